package rotator_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/rekeyhq/rekey/rotator"
)

// A leak by hand with the replacement submitted before the confirmation:
// the replacement is current in every sink at once, the leaked value stays
// beside it as previous (never current) so that the confirmation is probed
// with it — refused while the leaked key still authenticates, verified once
// it is revoked — and cleaning drops it. Before, the delivery replaced the
// leaked value, and the confirmation was taken unprobed ("no sink holds the
// value any more", verified: false) while the leaked key still worked.
func TestLeakByHandSubmitFirstConfirmIsProbed(t *testing.T) {
	w := newCrashWorld(t, true)
	w.bootstrap()
	w.byHand()
	bh := w.key.Issuer.(*byHandIssuer)
	leakedValue := w.sinks[0].current("api")
	r := w.trigger(rotator.TriggerRequest{Trigger: rotator.TriggerExposure, Mode: rotator.ModeEmergency, TargetGeneration: 1, Reason: "pasted in a ticket"})()
	var refused, confirmed bool
	end, _ := w.drive(r.ID, func(w *crashWorld, r *rotator.Rotation) {
		switch {
		case r.Phase == rotator.PhaseMinting && r.Hold == rotator.HoldSecret:
			w.submit(r.ID, bh.mintAtDashboard("api", "api-v2"))
			// The submit itself made the replacement current everywhere;
			// the leaked value is previous, never current.
			for i, s := range w.sinks {
				s.mu.Lock()
				v := *s.slot(rotator.Target{Path: "api"})
				s.mu.Unlock()
				if v.cur == "" || v.cur == leakedValue || v.prev != leakedValue {
					t.Errorf("sink %d after submit: current is the leaked value %v, previous is the leaked value %v; want the replacement current and the leaked value previous",
						i, v.cur == leakedValue, v.prev == leakedValue)
				}
			}
		case r.Hold == rotator.HoldConfirm && !refused:
			// The person confirms without having revoked the leaked key.
			_, err := w.engine.Confirm(w.ctx, r.ID, "oncall@example.com")
			if !errors.Is(err, rotator.ErrRejected) || !strings.Contains(err.Error(), "api-v1 still authenticates") {
				t.Fatalf("confirm while the leaked key still works: %v, want refused: api-v1 still authenticates", err)
			}
			refused = true
		case r.Hold == rotator.HoldConfirm && !confirmed:
			_ = w.iss.issuer.Revoke(w.ctx, rotator.CredentialRef{ID: "id-1"})
			if _, err := w.engine.Confirm(w.ctx, r.ID, "oncall@example.com"); err != nil {
				t.Fatalf("confirm after the revoke: %v", err)
			}
			confirmed = true
		}
	})
	if end.Phase != rotator.PhaseDone || !refused || !confirmed {
		t.Fatalf("ended %s (%s), refused %v, confirmed %v", end.Phase, end.Outcome, refused, confirmed)
	}
	evs, _ := w.store.Audit(w.ctx, rotator.AuditFilter{RotationID: r.ID})
	var verified string
	for _, ev := range evs {
		if ev.Action == "revoke.confirmed" && ev.Actor == "oncall@example.com" {
			verified = ev.Detail["verified"]
		}
	}
	if verified != "true" {
		t.Errorf("revoke.confirmed verified=%q, want true (probed)", verified)
	}
	for i, s := range w.sinks {
		s.mu.Lock()
		v := *s.slot(rotator.Target{Path: "api"})
		s.mu.Unlock()
		if v.prev != "" || v.pend != "" {
			t.Errorf("sink %d still holds a stale value after the rotation", i)
		}
	}
	w.check(end)
}

// A confirmation that a probe could check but for which no value is left
// to probe with is refused without --force, and taken with it (audited as
// forced): it is never recorded as revoked on trust.
func TestConfirmWithoutValueToProbeNeedsForce(t *testing.T) {
	w := newCrashWorld(t, true)
	w.bootstrap()
	w.byHand()
	bh := w.key.Issuer.(*byHandIssuer)
	r := w.trigger(rotator.TriggerRequest{Trigger: rotator.TriggerExposure, Mode: rotator.ModeEmergency, TargetGeneration: 1, Reason: "pasted in a ticket"})()
	var refused, forced bool
	end, _ := w.drive(r.ID, func(w *crashWorld, r *rotator.Rotation) {
		switch {
		case r.Phase == rotator.PhaseMinting && r.Hold == rotator.HoldSecret:
			w.submit(r.ID, bh.mintAtDashboard("api", "api-v2"))
		case r.Hold == rotator.HoldConfirm && !refused:
			for _, s := range w.sinks { // someone cleaned the sinks by hand
				s.mu.Lock()
				s.slot(rotator.Target{Path: "api"}).prev = ""
				s.mu.Unlock()
			}
			_, err := w.engine.Confirm(w.ctx, r.ID, "oncall@example.com")
			if !errors.Is(err, rotator.ErrRejected) || !strings.Contains(err.Error(), "cannot verify that api-v1 is revoked") {
				t.Fatalf("unverifiable confirm: %v, want refused: cannot verify", err)
			}
			refused = true
		case r.Hold == rotator.HoldConfirm && !forced:
			if _, err := w.engine.ConfirmRevoked(w.ctx, rotator.ConfirmRequest{RotationID: r.ID, Actor: "oncall@example.com", Force: true}); err != nil {
				t.Fatalf("forced confirm: %v", err)
			}
			forced = true
		}
	})
	if end.Phase != rotator.PhaseDone || !refused || !forced {
		t.Fatalf("ended %s (%s), refused %v, forced %v", end.Phase, end.Outcome, refused, forced)
	}
	evs, _ := w.store.Audit(w.ctx, rotator.AuditFilter{RotationID: r.ID})
	for _, ev := range evs {
		if ev.Action == "revoke.confirmed" && ev.Actor == "oncall@example.com" && ev.Detail["verified"] != "forced" {
			t.Errorf("revoke.confirmed verified=%q, want forced", ev.Detail["verified"])
		}
	}
}
