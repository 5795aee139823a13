package slack

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	slackgo "github.com/slack-go/slack"

	"github.com/rekeyhq/rekey/internal/slackapproval"
	"github.com/rekeyhq/rekey/rotator"
)

// click is one Approve / Deny press, as either transport delivers it.
type click struct {
	userID      string
	value       string
	verdict     rotator.Verdict
	responseURL string
	channelID   string
	messageTS   string
	teamID      string // workspace and app the click came from (bound)
	appID       string
}

// clickOf extracts the rekey button press from an interaction, if any.
func clickOf(cb slackgo.InteractionCallback) (click, bool) {
	if cb.Type != slackgo.InteractionTypeBlockActions {
		return click{}, false
	}
	for _, a := range cb.ActionCallback.BlockActions {
		if a == nil {
			continue
		}
		var v rotator.Verdict
		switch a.ActionID {
		case slackapproval.ActionApprove:
			v = rotator.VerdictApprove
		case slackapproval.ActionDeny:
			v = rotator.VerdictDeny
		default:
			continue
		}
		c := click{userID: cb.User.ID, value: a.Value, verdict: v, responseURL: cb.ResponseURL,
			channelID: cb.Container.ChannelID, messageTS: cb.Container.MessageTs, teamID: cb.Team.ID, appID: cb.APIAppID}
		if c.teamID == "" {
			c.teamID = cb.User.TeamID
		}
		if c.channelID == "" {
			c.channelID = cb.Channel.ID
		}
		if c.messageTS == "" {
			c.messageTS = cb.Message.Timestamp
		}
		return c, true
	}
	return click{}, false
}

// dispatchClick hands a rekey button press to a background goroutine (the
// transport has acknowledged or is about to). Interactions that are not
// ours are ignored. False once the handler is closed.
func (h *Handler) dispatchClick(cb slackgo.InteractionCallback) bool {
	c, ok := clickOf(cb)
	if !ok {
		return true
	}
	return h.goAsync(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*h.cfg.Timeout)
		defer cancel()
		h.handleClick(ctx, c)
	})
}

// handleClick checks and records one decision. Every refusal is an
// ephemeral reply to the clicker and records nothing.
func (h *Handler) handleClick(ctx context.Context, c click) {
	log := h.log.With("slack_user", c.userID, "verdict", c.verdict)
	id, gate, ok := slackapproval.ParseButtonValue(c.value)
	if !ok {
		h.ephemeral(ctx, c, "This button is not one rekey understands.")
		return
	}
	if !h.bound(ctx, c, id) {
		return
	}
	log = log.With("rotation", id, "gate", gate)
	r, err := h.rotations.GetRotation(ctx, id)
	switch {
	case errors.Is(err, rotator.ErrNotFound) || (err == nil && r == nil):
		log.Warn("slack: click on an unknown rotation")
		h.ephemeral(ctx, c, fmt.Sprintf("Rotation `%s` is unknown to rekey.", escape(id)))
		return
	case err != nil:
		log.Error("slack: load rotation", "err", err)
		h.ephemeral(ctx, c, "rekey could not load this rotation right now; try again, or use `rekey approve`.")
		return
	}
	allowed, err := h.allowed(ctx, c.userID)
	if err != nil {
		log.Error("slack: check approver", "err", err)
		h.ephemeral(ctx, c, "rekey could not check whether you may approve (Slack did not answer); try again, or use `rekey approve`.")
		return
	}
	if !allowed {
		log.Warn("slack: click by a user who is not an approver")
		h.ephemeral(ctx, c, "You are not allowed to approve or deny rotations from Slack.")
		return
	}
	pending, ok := rotator.PendingGate(r)
	if !ok || r.Phase.Terminal() {
		h.ephemeral(ctx, c, fmt.Sprintf("Rotation of `%s` is no longer waiting for a decision (%s).", escape(r.Key), label(r.Phase)))
		return
	}
	if pending != gate {
		h.ephemeral(ctx, c, fmt.Sprintf("This button was for the %s gate; the rotation of `%s` now waits on the %s gate. Use the buttons of the current message.",
			gate, escape(r.Key), pending))
		return
	}
	approver, err := h.approverOf(ctx, c.userID)
	if errors.Is(err, errNoIdentity) {
		log.Warn("slack: click by a user with no email and no configured identity")
		h.ephemeral(ctx, c, "rekey cannot tell who you are: your Slack profile has no email and the slack webhook's identities do not name you. Ask an admin to add you, or use the admin API.")
		return
	}
	if err != nil {
		log.Error("slack: resolve the clicker", "err", err)
		h.ephemeral(ctx, c, "rekey could not look up your Slack profile; try again, or use `rekey approve`.")
		return
	}
	_, err = h.decider.Decide(ctx, rotator.ApproveRequest{RotationID: id, Gate: gate, Approver: approver, Verdict: c.verdict, Via: "slack",
		Comment: "slack user " + c.userID})
	if err != nil {
		log.Warn("slack: decision refused", "approver", approver, "err", err)
		h.ephemeral(ctx, c, refusal(err, r, gate))
		return
	}
	log.Info("slack: decision recorded", "approver", approver)
	d := slackapproval.Decision{Gate: gate, Verdict: c.verdict, By: approver, SlackID: c.userID, At: time.Now()}
	if err := h.messages.ShowDecision(ctx, r, slackapproval.Message{Channel: c.channelID, TS: c.messageTS}, d); err != nil {
		// The decision stands; the engine's approval event updates the
		// message again.
		log.Error("slack: show decision", "err", err)
	}
}

// refusal explains an engine refusal to the clicker.
func refusal(err error, r *rotator.Rotation, g rotator.Gate) string {
	switch {
	case errors.Is(err, rotator.ErrSelfApproval):
		return "You requested this rotation, so someone else must approve it."
	case errors.Is(err, rotator.ErrDecided):
		return fmt.Sprintf("You have already decided the %s gate of this rotation.", g)
	case errors.Is(err, rotator.ErrNoGate):
		return fmt.Sprintf("Rotation of `%s` is no longer waiting for a decision (it expired, was decided or was cancelled).", escape(r.Key))
	case errors.Is(err, rotator.ErrNotApprover):
		return fmt.Sprintf("You are not an approver of key `%s`: its approval policy names who may decide.", escape(r.Key))
	case errors.Is(err, rotator.ErrNotFound):
		return fmt.Sprintf("Rotation `%s` is unknown to rekey.", escape(r.ID))
	case errors.Is(err, rotator.ErrDeparted):
		return fmt.Sprintf("rekey has you on record as having left (%s): your decisions no longer count.", escape(err.Error()))
	}
	return "rekey could not record your decision; try again, or use `rekey approve`."
}

// allowed reports whether a Slack user may decide: listed in
// approvers.user_ids, or a member of one of approvers.user_groups right now.
func (h *Handler) allowed(ctx context.Context, userID string) (bool, error) {
	if userID == "" {
		return false, nil
	}
	if slices.Contains(h.cfg.Approvers.UserIDs, userID) {
		return true, nil
	}
	for _, g := range h.cfg.Approvers.UserGroups {
		cctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
		members, err := h.api.GetUserGroupMembersContext(cctx, g)
		cancel()
		if err != nil {
			return false, apiError("usergroups.users.list "+g, err)
		}
		if slices.Contains(members, userID) {
			return true, nil
		}
	}
	return false, nil
}

// errNoIdentity: a Slack user rekey cannot map to a person.
var errNoIdentity = errors.New("no identity")

// approverOf is the canonical identity recorded for a Slack user: the one
// configured for them in identities, else their profile email, trimmed and
// lower-cased (as key owners, approval policies and API principals name
// people), so that the engine's self-approval and two-person checks
// compare one spelling per person across channels. A user with neither
// cannot decide (errNoIdentity): "slack:<id>" would be a second identity
// for someone who also uses the API. A failed lookup is an error too.
func (h *Handler) approverOf(ctx context.Context, userID string) (string, error) {
	if id, ok := h.cfg.Identities[userID]; ok {
		return canonical(id), nil
	}
	cctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	u, err := h.api.GetUserInfoContext(cctx, userID)
	if err != nil {
		return "", apiError("users.info "+userID, err)
	}
	if email := canonical(u.Profile.Email); email != "" {
		return email, nil
	}
	return "", errNoIdentity
}

// canonical is the canonical form of an identity (auth.Canonical; adapters
// do not import auth, and app canonicalises again before the engine).
func canonical(id string) string { return strings.ToLower(strings.TrimSpace(id)) }

// ephemeral answers the clicker only, through the interaction's
// response_url (or chat.postEphemeral when there is none we trust).
func (h *Handler) ephemeral(ctx context.Context, c click, text string) {
	cctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	var err error
	if h.trustedResponseURL(c.responseURL) {
		_, _, _, err = h.api.SendMessageContext(cctx, c.channelID,
			slackgo.MsgOptionResponseURL(c.responseURL, slackgo.ResponseTypeEphemeral),
			slackgo.MsgOptionText(text, false))
	} else if c.channelID != "" && c.userID != "" {
		_, err = h.api.PostEphemeralContext(cctx, c.channelID, c.userID, slackgo.MsgOptionText(text, false))
	}
	if err != nil {
		h.log.Warn("slack: ephemeral reply failed", "slack_user", c.userID, "err", apiError("ephemeral reply", err).Error())
	}
}

// trustedResponseURL accepts Slack's own hooks, or the configured API host
// (tests, proxies): the handler never POSTs to an arbitrary URL.
func (h *Handler) trustedResponseURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return false
	}
	host := u.Hostname()
	if u.Scheme == "https" && (host == "slack.com" || strings.HasSuffix(host, ".slack.com") ||
		host == "slack-gov.com" || strings.HasSuffix(host, ".slack-gov.com")) {
		return true
	}
	api, err := url.Parse(h.cfg.APIURL)
	return err == nil && u.Scheme == api.Scheme && u.Host == api.Host
}

// apiError names the Slack call that failed. slack-go errors carry no
// token, and a *url.Error shows only the API URL; the response_url of an
// ephemeral reply is dropped with the *url.Error.
func apiError(what string, err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	return fmt.Errorf("slack: %s: %w", what, err)
}

// escape makes text safe for mrkdwn: no accidental links or mentions.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// label is a phase as people read it.
func label(p rotator.Phase) string { return strings.ReplaceAll(string(p), "_", " ") }
