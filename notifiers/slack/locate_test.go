package slack

import (
	"context"
	"testing"

	"github.com/rekeyhq/rekey/rotator"
)

// TestMessageOf: the notifier tells the Slack webhook where it posted a
// rotation's buttons, and that it posted nothing for an unknown rotation.
func TestMessageOf(t *testing.T) {
	e := newEnv(t, nil)
	_, at, _ := e.heldForApproval("rot_where001", rotator.GateStart)
	got, ok, err := e.n.MessageOf(context.Background(), "rot_where001")
	if err != nil || !ok || got != at {
		t.Fatalf("MessageOf = %+v, %v, %v; want %+v", got, ok, err, at)
	}
	if _, ok, err := e.n.MessageOf(context.Background(), "rot_nothing1"); ok || err != nil {
		t.Fatalf("MessageOf(unposted) = %v, %v", ok, err)
	}
}
