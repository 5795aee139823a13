package slack

import (
	"context"

	"github.com/rekeyhq/rekey/internal/slackapproval"
	"github.com/rekeyhq/rekey/rotator"
)

// ShowDecision replaces the buttons of a rotation's parent message with who
// decided and when, once the engine has recorded a decision made from
// Slack (the Slack webhook calls it). at is the message that was clicked:
// when the notifier lost its state for the rotation, the message is
// rebuilt there from the rotation. A hold event emitted before the click
// and delivered after it does not bring the buttons back; one emitted later
// (a second approval is needed) does.
func (n *Notifier) ShowDecision(ctx context.Context, r *rotator.Rotation, at slackapproval.Message, d slackapproval.Decision) error {
	unlock := n.locks.lock(r.ID)
	defer unlock()
	st, err := n.loadRotation(ctx, r.ID)
	if err != nil {
		return err
	}
	if !st.posted() {
		st = &messageState{Channel: at.Channel, TS: at.TS, Key: r.Key, Trigger: r.Trigger, Mode: r.Mode, Actor: r.Actor,
			Reason: r.Reason, Phase: r.Phase, LastActive: r.Phase, Hold: r.Hold, HoldDetail: r.HoldDetail, UpdatedAt: r.UpdatedAt}
		if !st.posted() || st.Channel == "" {
			return nil // nothing to update
		}
	}
	st.addDecision(decision{Gate: d.Gate, Verdict: d.Verdict, By: d.By, SlackID: d.SlackID, At: d.At})
	st.DecidedGate = d.Gate
	if d.At.After(st.UpdatedAt) {
		st.UpdatedAt = d.At
	}
	if err := n.saveRotation(ctx, r.ID, st); err != nil {
		return err
	}
	return n.updateParent(ctx, r.ID, st)
}
