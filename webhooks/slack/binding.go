package slack

import (
	"context"
	"fmt"
)

// bound reports whether click c may act on rotation id: it comes from the
// expected workspace (team_id) and Slack app (api_app_id), when configured,
// and from the very message the notifier posted for this rotation (channel
// and message ts as stored when it was posted). A button's value alone
// names a rotation; without this check a signed click copied onto another
// message — or sent from another workspace where an org-wide app is
// installed — decided whatever rotation its value named. A refusal is
// answered to the clicker and recorded nowhere else.
func (h *Handler) bound(ctx context.Context, c click, id string) bool {
	log := h.log.With("slack_user", c.userID, "rotation", id)
	if why := h.expectedOrigin(c); why != "" {
		log.Warn("slack: click refused: " + why)
		h.ephemeral(ctx, c, "This button does not belong to the Slack app rekey answers to.")
		return false
	}
	at, ok, err := h.messages.MessageOf(ctx, id)
	switch {
	case err != nil:
		log.Error("slack: locate the rotation's message", "err", err)
		h.ephemeral(ctx, c, "rekey could not check this message right now; try again, or use `rekey approve`.")
		return false
	case !ok || at.Channel != c.channelID || at.TS != c.messageTS:
		log.Warn("slack: click refused: not on the rotation's message", "channel", c.channelID, "message_ts", c.messageTS)
		h.ephemeral(ctx, c, fmt.Sprintf("This button is not on the message rekey posted for rotation `%s`; use the buttons of that message, or `rekey approve`.", escape(id)))
		return false
	}
	return true
}

// expectedOrigin names what does not match the configured team_id and
// api_app_id ("" when the click matches or nothing is configured).
func (h *Handler) expectedOrigin(c click) string {
	switch {
	case h.cfg.TeamID != "" && c.teamID != h.cfg.TeamID:
		return fmt.Sprintf("team_id %q is not the configured %s", c.teamID, h.cfg.TeamID)
	case h.cfg.APIAppID != "" && c.appID != h.cfg.APIAppID:
		return fmt.Sprintf("api_app_id %q is not the configured %s", c.appID, h.cfg.APIAppID)
	}
	return ""
}
