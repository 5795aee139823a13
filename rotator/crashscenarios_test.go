package rotator_test

import (
	"context"
	"errors"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// crashScenarios are the ways the crash matrix reaches every side effect
// of every lifecycle table. A scenario whose name contains "unreadable"
// runs with sinks that cannot give a pending secret back, so a restart
// loses the new secret and the rotation must abandon its generation.
func crashScenarios() []*crashScenario {
	staged := rotator.TriggerRequest{Trigger: rotator.TriggerManual, Mode: rotator.ModeStaged, Reason: "crash matrix"}
	exposure := rotator.TriggerRequest{Trigger: rotator.TriggerExposure, Mode: rotator.ModeEmergency, TargetGeneration: 1, Reason: "crash matrix"}
	return []*crashScenario{
		{name: "staged", lifecycle: "staged",
			covers: []string{"minting", "staging", "verifying", "cutting_over", "revoking", "cleaning"},
			setup:  func(w *crashWorld) func() *rotator.Rotation { w.bootstrap(); return w.trigger(staged) }},
		{name: "mint-lost-then-reaped", lifecycle: "staged", covers: []string{"minting/reap"},
			setup: func(w *crashWorld) func() *rotator.Rotation {
				w.bootstrap()
				w.iss.loseMints(1, false)
				return w.trigger(staged)
			}},
		{name: "unreadable-stage-retried-after-restart", lifecycle: "staged", covers: []string{"staging/abandon"},
			setup: func(w *crashWorld) func() *rotator.Rotation {
				w.bootstrap()
				w.failStages(1)
				return w.trigger(staged)
			},
			each: restartOnceIn(rotator.PhaseStaging)},
		{name: "unreadable-verify-retried-after-restart", lifecycle: "staged", covers: []string{"verifying/abandon"},
			setup: func(w *crashWorld) func() *rotator.Rotation {
				w.bootstrap()
				w.iss.mu.Lock()
				w.iss.verifyFail = 1
				w.iss.mu.Unlock()
				return w.trigger(staged)
			},
			each: restartOnceIn(rotator.PhaseVerifying)},
		{name: "cancel-while-draining", lifecycle: "staged", covers: []string{"rolling_back", "rolling_back/revoke"},
			setup: func(w *crashWorld) func() *rotator.Rotation {
				w.bootstrap()
				w.src.set(1, nil) // consumers still on the old key: the drain waits
				return w.trigger(staged)
			},
			each: func(w *crashWorld, r *rotator.Rotation) {
				if r.Phase == rotator.PhaseDraining {
					if _, err := w.engine.Cancel(w.ctx, r.ID, "tester", "crash matrix"); err != nil {
						w.t.Fatal(err)
					}
					w.src.set(0, nil)
				}
			}},
		{name: "mint-refused-after-creating", lifecycle: "staged", covers: []string{"rolling_back/reap"},
			setup: func(w *crashWorld) func() *rotator.Rotation {
				w.bootstrap()
				w.iss.loseMints(1, true)
				return w.trigger(staged)
			}},
		{name: "exposure", lifecycle: "emergency",
			covers: []string{"revoking", "minting", "staging", "verifying"},
			setup:  func(w *crashWorld) func() *rotator.Rotation { w.bootstrap(); return w.trigger(exposure) }},
		{name: "exposure-of-the-previous-generation", lifecycle: "emergency", covers: []string{"cleaning"},
			setup: func(w *crashWorld) func() *rotator.Rotation {
				w.bootstrap()
				w.twoLiveGenerations()
				// Generation 1, still live as previous, is exposed: revoking
				// it is the remedy, then it is cleaned out of the sinks.
				return w.trigger(rotator.TriggerRequest{Trigger: rotator.TriggerExposure, Mode: rotator.ModeEmergency, TargetGeneration: 1, Reason: "crash matrix"})
			}},
		{name: "exposure-mint-lost-then-reaped", lifecycle: "emergency", covers: []string{"minting/reap"},
			setup: func(w *crashWorld) func() *rotator.Rotation {
				w.bootstrap()
				w.iss.loseMints(1, false)
				return w.trigger(exposure)
			}},
		{name: "exposure-unreadable-stage-retried-after-restart", lifecycle: "emergency", covers: []string{"staging/abandon"},
			setup: func(w *crashWorld) func() *rotator.Rotation {
				w.bootstrap()
				w.failStages(1)
				return w.trigger(exposure)
			},
			each: restartOnceIn(rotator.PhaseStaging)},
		{name: "leak-by-hand-submit-first", lifecycle: "emergency_manual",
			covers: []string{"staging", "cutting_over", "verifying", "cleaning"},
			setup:  func(w *crashWorld) func() *rotator.Rotation { w.bootstrap(); w.byHand(); return w.trigger(exposure) },
			each:   byHandPerson(false)},
		{name: "leak-by-hand-confirm-first", lifecycle: "emergency_manual",
			covers: []string{"staging", "cutting_over", "verifying", "cleaning"},
			setup:  func(w *crashWorld) func() *rotator.Rotation { w.bootstrap(); w.byHand(); return w.trigger(exposure) },
			each:   byHandPerson(true)},
		{name: "leak-by-hand-unreadable-stage-retried-after-restart", lifecycle: "emergency_manual", covers: []string{"staging/abandon"},
			setup: func(w *crashWorld) func() *rotator.Rotation {
				w.bootstrap()
				w.byHand()
				w.failStages(1)
				return w.trigger(exposure)
			},
			each: func(w *crashWorld, r *rotator.Rotation) {
				byHandPerson(false)(w, r)
				if w.diedInEach {
					return
				}
				r, err := w.store.GetRotation(w.ctx, r.ID)
				if err != nil {
					w.t.Fatal(err)
				}
				restartOnceIn(rotator.PhaseStaging)(w, r)
			}},
		{name: "two-live-generations", lifecycle: "decommission", covers: []string{"revoking/each", "revoking", "removing"},
			setup: func(w *crashWorld) func() *rotator.Rotation {
				w.bootstrap()
				w.twoLiveGenerations()
				return w.trigger(rotator.TriggerRequest{Trigger: rotator.TriggerDecommission, Mode: rotator.ModeEmergency, Reason: "crash matrix"})
			}},
	}
}

// twoLiveGenerations runs a staged rotation whose revoke gate expires: it
// leaves generation 1 live as previous beside generation 2.
func (w *crashWorld) twoLiveGenerations() {
	w.key.Approval = rotator.ApprovalPolicy{Gates: []rotator.Gate{rotator.GateRevoke}, ExpireAfter: time.Hour}
	w.restart("")
	r := w.trigger(rotator.TriggerRequest{Trigger: rotator.TriggerManual, Mode: rotator.ModeStaged, Reason: "crash matrix"})()
	if r, _ = w.drive(r.ID, nil); r.Phase != rotator.PhaseExpired {
		w.t.Fatalf("setup rotation ended %s, want expired", r.Phase)
	}
	w.key.Approval = rotator.ApprovalPolicy{}
}

// restartOnceIn restarts the engine (losing what it held in memory, the
// new secret among it) the first time the rotation rests in phase p after
// a failed attempt.
func restartOnceIn(p rotator.Phase) func(*crashWorld, *rotator.Rotation) {
	return func(w *crashWorld, r *rotator.Rotation) {
		if r.Phase == p && r.Attempts > 0 && !w.restarted {
			w.restarted = true
			w.restart(w.armed)
		}
	}
}

// loseMints makes the next n mints create the credential at the issuer and
// then fail as if the answer was lost (a reset connection), or refused
// (permanent) after creating it.
func (v *verifyingIssuer) loseMints(n int, permanent bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.lost, v.lostPermanent = n, permanent
}

func (v *verifyingIssuer) Mint(ctx context.Context, req rotator.MintRequest) (rotator.Minted, error) {
	if m, ok, err := v.replay(req); ok {
		return m, err
	}
	if err, ok := v.storedFailure(ctx, req); ok {
		return rotator.Minted{}, err
	}
	m, err := v.issuer.Mint(ctx, req)
	v.mu.Lock()
	defer v.mu.Unlock()
	if err == nil {
		v.keys.store(req, m)
	}
	if err == nil && v.lost > 0 {
		v.lost--
		if v.lostPermanent {
			return rotator.Minted{}, rotator.Permanent(errors.New("issuer answered 400 after creating the key"))
		}
		return rotator.Minted{}, errors.New("connection reset after the issuer created the key")
	}
	return m, err
}

// failStages makes the next n stage calls of the first sink fail
// (retryably) before they change anything.
func (w *crashWorld) failStages(n int) {
	w.stageFails.Store(int32(n))
}

// faultySink fails Stage while its world says so.
type faultySink struct {
	rotator.Sink
	w *crashWorld
}

func (f faultySink) Stage(ctx context.Context, t rotator.Target, d rotator.Delivery) error {
	if f.w.stageFails.Add(-1) >= 0 {
		return errors.New("sink timed out")
	}
	return f.Sink.Stage(ctx, t, d)
}
