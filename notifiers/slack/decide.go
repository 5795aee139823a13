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

	"github.com/rekeyhq/rekey/rotator"
)

// click is one Approve / Deny press, as either transport delivers it.
type click struct {
	userID      string
	userName    string
	value       string
	verdict     rotator.Verdict
	responseURL string
	channelID   string
	messageTS   string
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
		case ActionApprove:
			v = rotator.VerdictApprove
		case ActionDeny:
			v = rotator.VerdictDeny
		default:
			continue
		}
		c := click{userID: cb.User.ID, userName: cb.User.Name, value: a.Value, verdict: v, responseURL: cb.ResponseURL,
			channelID: cb.Container.ChannelID, messageTS: cb.Container.MessageTs}
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
// ours are ignored. False once the notifier is closed.
func (n *Notifier) dispatchClick(cb slackgo.InteractionCallback) bool {
	c, ok := clickOf(cb)
	if !ok {
		return true
	}
	return n.goAsync(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*n.cfg.Timeout)
		defer cancel()
		n.handleClick(ctx, c)
	})
}

// handleClick checks and records one decision. Every refusal is an
// ephemeral reply to the clicker and records nothing.
func (n *Notifier) handleClick(ctx context.Context, c click) {
	log := n.logger.With("slack_user", c.userID, "verdict", c.verdict)
	id, gate, ok := parseButtonValue(c.value)
	if !ok {
		n.ephemeral(ctx, c, "This button is not one rekey understands.")
		return
	}
	log = log.With("rotation", id, "gate", gate)
	r, err := n.rotations.GetRotation(ctx, id)
	switch {
	case errors.Is(err, rotator.ErrNotFound) || (err == nil && r == nil):
		log.Warn("slack: click on an unknown rotation")
		n.ephemeral(ctx, c, fmt.Sprintf("Rotation `%s` is unknown to rekey.", escape(id)))
		return
	case err != nil:
		log.Error("slack: load rotation", "err", err)
		n.ephemeral(ctx, c, "rekey could not load this rotation right now; try again, or use `rekey approve`.")
		return
	}
	allowed, err := n.allowed(ctx, c.userID)
	if err != nil {
		log.Error("slack: check approver", "err", err)
		n.ephemeral(ctx, c, "rekey could not check whether you may approve (Slack did not answer); try again, or use `rekey approve`.")
		return
	}
	if !allowed {
		log.Warn("slack: click by a user who is not an approver")
		n.ephemeral(ctx, c, "You are not allowed to approve or deny rotations from Slack.")
		return
	}
	pending, ok := rotator.PendingGate(r)
	if !ok || r.Phase.Terminal() {
		n.ephemeral(ctx, c, fmt.Sprintf("Rotation of `%s` is no longer waiting for a decision (%s).", escape(r.Key), label(r.Phase)))
		return
	}
	if pending != gate {
		n.ephemeral(ctx, c, fmt.Sprintf("This button was for the %s gate; the rotation of `%s` now waits on the %s gate. Use the buttons of the current message.",
			gate, escape(r.Key), pending))
		return
	}
	approver, err := n.approverOf(ctx, c.userID)
	if err != nil {
		log.Error("slack: resolve the clicker", "err", err)
		n.ephemeral(ctx, c, "rekey could not look up your Slack profile; try again, or use `rekey approve`.")
		return
	}
	_, err = n.decider.Decide(ctx, rotator.ApproveRequest{RotationID: id, Gate: gate, Approver: approver, Verdict: c.verdict, Via: "slack",
		Comment: "slack user " + c.userID})
	if err != nil {
		log.Warn("slack: decision refused", "approver", approver, "err", err)
		n.ephemeral(ctx, c, refusal(err, r, gate))
		return
	}
	log.Info("slack: decision recorded", "approver", approver)
	n.showDecision(ctx, r, c, decision{Gate: gate, Verdict: c.verdict, By: approver, SlackID: c.userID, At: time.Now()})
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
	}
	return "rekey could not record your decision; try again, or use `rekey approve`."
}

// allowed reports whether a Slack user may decide: listed in
// approvers.user_ids, or a member of one of approvers.user_groups right now.
func (n *Notifier) allowed(ctx context.Context, userID string) (bool, error) {
	if userID == "" {
		return false, nil
	}
	if slices.Contains(n.cfg.Approvers.UserIDs, userID) {
		return true, nil
	}
	for _, g := range n.cfg.Approvers.UserGroups {
		cctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
		members, err := n.api.GetUserGroupMembersContext(cctx, g)
		cancel()
		if err != nil {
			return false, classify("usergroups.users.list", "usergroups.users.list "+g, err)
		}
		if slices.Contains(members, userID) {
			return true, nil
		}
	}
	return false, nil
}

// approverOf is the identity recorded for a Slack user: their email (as
// key owners and approval policies name people), or "slack:<id>" when
// Slack has none for them. A failed lookup is an error, not a fallback: the
// engine's self-approval check compares this identity with the requester.
func (n *Notifier) approverOf(ctx context.Context, userID string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	u, err := n.api.GetUserInfoContext(cctx, userID)
	if err != nil {
		return "", classify("users.info", "users.info "+userID, err)
	}
	if email := strings.TrimSpace(u.Profile.Email); email != "" {
		return email, nil
	}
	return "slack:" + userID, nil
}

// showDecision replaces the buttons of the parent message with who decided
// and when.
func (n *Notifier) showDecision(ctx context.Context, r *rotator.Rotation, c click, d decision) {
	unlock := n.locks.lock(r.ID)
	defer unlock()
	st, err := n.loadRotation(ctx, r.ID)
	if err != nil {
		n.logger.Error("slack: show decision", "rotation", r.ID, "err", err)
		return
	}
	if !st.posted() {
		// The state was lost: rebuild it from the rotation and the message
		// that was clicked.
		st = &messageState{Channel: c.channelID, TS: c.messageTS, Key: r.Key, Trigger: r.Trigger, Mode: r.Mode, Actor: r.Actor,
			Reason: r.Reason, Phase: r.Phase, LastActive: r.Phase, Hold: r.Hold, HoldDetail: r.HoldDetail, UpdatedAt: r.UpdatedAt}
		if !st.posted() || st.Channel == "" {
			return
		}
	}
	st.addDecision(d)
	st.DecidedGate = d.Gate
	// A hold event emitted before the click and delivered after it must not
	// bring the buttons back; one emitted later (a second approval is
	// needed) will.
	if d.At.After(st.UpdatedAt) {
		st.UpdatedAt = d.At
	}
	if err := n.saveRotation(ctx, r.ID, st); err != nil {
		n.logger.Error("slack: show decision", "rotation", r.ID, "err", err)
	}
	if err := n.updateParent(ctx, r.ID, st); err != nil {
		n.logger.Error("slack: show decision", "rotation", r.ID, "err", err)
	}
}

// ephemeral answers the clicker only, through the interaction's
// response_url (or chat.postEphemeral when there is none we trust).
func (n *Notifier) ephemeral(ctx context.Context, c click, text string) {
	cctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	var err error
	if n.trustedResponseURL(c.responseURL) {
		_, _, _, err = n.api.SendMessageContext(cctx, c.channelID,
			slackgo.MsgOptionResponseURL(c.responseURL, slackgo.ResponseTypeEphemeral),
			slackgo.MsgOptionText(text, false))
	} else if c.channelID != "" && c.userID != "" {
		_, err = n.api.PostEphemeralContext(cctx, c.channelID, c.userID, slackgo.MsgOptionText(text, false))
	}
	if err != nil {
		n.logger.Warn("slack: ephemeral reply failed", "slack_user", c.userID, "err", classify("response_url", "ephemeral reply", err).Error())
	}
}

// trustedResponseURL accepts Slack's own hooks, or the configured API host
// (tests, proxies): the notifier never POSTs to an arbitrary URL.
func (n *Notifier) trustedResponseURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return false
	}
	host := u.Hostname()
	if u.Scheme == "https" && (host == "slack.com" || strings.HasSuffix(host, ".slack.com") ||
		host == "slack-gov.com" || strings.HasSuffix(host, ".slack-gov.com")) {
		return true
	}
	api, err := url.Parse(n.cfg.APIURL)
	return err == nil && u.Scheme == api.Scheme && u.Host == api.Host
}
