package slack

import (
	"context"

	"github.com/rekeyhq/rekey/internal/slackapproval"
)

// MessageOf returns where the rotation's parent message is — the one that
// carries its Approve / Deny buttons — as stored when the notifier posted
// it; false when it posted none. The Slack webhook accepts a click only
// from that message.
func (n *Notifier) MessageOf(ctx context.Context, rotationID string) (slackapproval.Message, bool, error) {
	st, err := n.loadRotation(ctx, rotationID)
	if err != nil {
		return slackapproval.Message{}, false, err
	}
	if !st.posted() || st.Channel == "" {
		return slackapproval.Message{}, false, nil
	}
	return slackapproval.Message{Channel: st.Channel, TS: st.TS}, true, nil
}
