package slack

import (
	"strings"
	"testing"

	"github.com/rekeyhq/rekey/rotator"
)

// TestDrainExitsAreTruthful: each way out of the drain gate is announced
// as what it was, with no empty field. Before, every exit read "Drained:
// no failed authentication for  ( polls of )".
func TestDrainExitsAreTruthful(t *testing.T) {
	tests := map[string]struct {
		fields map[string]string
		want   []string
	}{
		"passed": {fields: map[string]string{"exit": rotator.DrainPassed, "quiet_for": "5m0s", "polls": "10", "source": "prometheus"},
			want: []string{"*Drained*: no failed authentication for 5m0s (10 polls of prometheus)"}},
		"overridden by an exposure": {fields: map[string]string{"exit": rotator.DrainOverridden, "by": "exposure", "polls": "3", "source": "prometheus", "last_value": "0.5"},
			want: []string{"*Drain gate overridden*: the old key was exposed", "(3 polls of prometheus, last 401 rate 0.5)"}},
		"approved anyway": {fields: map[string]string{"exit": rotator.DrainApprovedAnyway, "by": "revoke", "approved_by": "bob@example.com", "polls": "40", "source": "prometheus", "last_value": "2"},
			want: []string{"*Approved anyway* by bob@example.com", "although traffic had not drained"}},
		"overridden before any poll": {fields: map[string]string{"exit": rotator.DrainOverridden, "by": "exposure", "polls": "0"},
			want: []string{"Drain gate overridden"}},
		"an older event without exit": {fields: map[string]string{"by": "exposure"}, want: []string{"Drain gate overridden"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, nil)
			b := newEvents("rot_drain001", "payments-api")
			e.notify(b.started(), b.phase(rotator.PhaseDraining, rotator.PhaseRevoking, tc.fields))
			replies := e.slack.replies()
			if len(replies) != 1 {
				t.Fatalf("%d replies, want 1", len(replies))
			}
			got := replies[0].Form.Get("text")
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("reply %q lacks %q", got, w)
				}
			}
			for _, bad := range []string{"for  ", "( ", " of )", "by  ", "()"} {
				if strings.Contains(got, bad) {
					t.Errorf("reply %q has an empty field (%q)", got, bad)
				}
			}
			if tc.fields["exit"] != rotator.DrainPassed && strings.Contains(got, "Drained") {
				t.Errorf("an override reads as drained: %q", got)
			}
		})
	}
}

// TestNoApprovalStepWithoutAGate: a key with no start gate never shows
// "awaiting approval" or "✓ approval"; a manual-issuer emergency shows its
// confirming step.
func TestNoApprovalStepWithoutAGate(t *testing.T) {
	e := newEnv(t, nil)
	b := newEvents("rot_nogate01", "payments-api")
	start := b.started()
	start.Fields = map[string]string{"start_gate": "false", "lifecycle": "staged"}
	e.notify(start, b.phase(rotator.PhaseAwaitingApproval, rotator.PhaseMinting, nil))
	for _, c := range append(e.slack.parents(), e.slack.byMethod("chat.update")...) {
		if txt := c.text(t); strings.Contains(txt, "approval") {
			t.Errorf("a key without a start gate shows an approval step: %s", txt)
		}
	}

	e2 := newEnv(t, nil)
	b2 := newEvents("rot_byhand01", "kubeadapt-billing")
	b2.mode, b2.trigger = rotator.ModeEmergency, rotator.TriggerExposure
	s2 := b2.started()
	s2.Fields = map[string]string{"lifecycle": rotator.EmergencyByHand.Name}
	e2.notify(s2,
		b2.held(rotator.PhaseMinting, rotator.HoldSecret, "LEAKED: the API key kubeadapt-billing-v1 …", rotator.SeverityCritical),
		b2.phase(rotator.PhaseVerifying, rotator.PhaseConfirming, nil))
	updates := e2.slack.byMethod("chat.update")
	if len(updates) != 2 || !strings.Contains(updates[0].text(t), "revoke the exposed key and mint its replacement") ||
		!strings.Contains(updates[1].text(t), "▶ *confirming*") {
		t.Errorf("the emergency by hand does not show what it waits for and its confirming step: %v", updates)
	}
	replies := e2.slack.replies()
	if len(replies) == 0 || !strings.HasPrefix(replies[0].Form.Get("text"), ":rotating_light:") || !strings.Contains(replies[0].Form.Get("text"), "<!subteam^SONCALL>") {
		t.Errorf("the LEAKED message is not an alarm that pages on-call in the thread: %v", replies)
	}
}
