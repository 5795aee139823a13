package rotator_test

import (
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

func TestStagedRotationCompletes(t *testing.T) {
	e := newEnv(t)
	e.bootstrap()
	gen1 := e.creds()[1]
	r := e.run(e.trigger(rotator.TriggerManual, "").ID, 100)
	if r.Phase != rotator.PhaseDone {
		t.Fatalf("phase %s hold %s err %s", r.Phase, r.Hold, r.LastError)
	}
	creds := e.creds()
	if creds[1].State != rotator.CredRevoked || creds[2].State != rotator.CredCurrent {
		t.Fatalf("states: gen1 %s gen2 %s", creds[1].State, creds[2].State)
	}
	if !e.iss.isRevoked(gen1.IssuerID) {
		t.Fatal("old credential not revoked at the issuer")
	}
	for i, s := range e.sinks {
		if got := rotator.Fingerprint(s.current("api")); got != creds[2].Fingerprint {
			t.Fatalf("sink %d current is not generation 2", i)
		}
	}
	want := []string{"rotation.created", "started", "mint.intent", "minted", "staged", "verify.skipped", "cut_over", "drained", "revoked", "watched", "finished"}
	got := e.actions(r.ID)
	for _, a := range want {
		if !slices.Contains(got, a) {
			t.Fatalf("audit lacks %q: %v", a, got)
		}
	}
	// Quiet period: the gate passed no earlier than 5 minutes after cut-over.
	if r.Drain.QuietSince.IsZero() || r.Drain.Polls < 2 {
		t.Fatalf("drain state %+v: the gate did not poll through the quiet period", r.Drain)
	}
}

// Invariant 1: the old credential stays live while any sink lacks the new
// one as current, and while the drain gate has not passed.
func TestNoRevokeBeforeEverySinkIsCurrent(t *testing.T) {
	e := newEnv(t)
	e.bootstrap()
	old := e.creds()[1]
	e.sinks[1].failOn("promote", rotator.WithReason(rotator.ReasonTransient, errors.New("sink down")))
	r := e.trigger(rotator.TriggerManual, "")
	r = e.run(r.ID, 30)
	if r.Phase != rotator.PhaseCuttingOver || r.Attempts == 0 {
		t.Fatalf("want retrying in cutting_over, got %s attempts %d", r.Phase, r.Attempts)
	}
	if e.iss.isRevoked(old.IssuerID) {
		t.Fatal("old credential revoked while a sink lacked the new one")
	}
	if r.LastError == "" || r.ErrorReason != rotator.ReasonTransient {
		t.Fatalf("error not recorded: %q %q", r.LastError, r.ErrorReason)
	}
	e.sinks[1].failOn("promote", nil)
	e.src.set(3, nil) // 401s still observed
	r = e.run(r.ID, 30)
	if r.Phase != rotator.PhaseDraining || e.iss.isRevoked(old.IssuerID) {
		t.Fatalf("want draining with the old key live, got %s revoked=%v", r.Phase, e.iss.isRevoked(old.IssuerID))
	}
	e.src.set(0, errors.New("prometheus down")) // an error is not zero
	e.clock.Advance(20 * time.Minute)
	r = e.run(r.ID, 5)
	if e.iss.isRevoked(old.IssuerID) || r.Drain.LastError == "" {
		t.Fatalf("revoked on a failing source, or error not recorded: %+v", r.Drain)
	}
	e.src.set(0, nil)
	r = e.run(r.ID, 100)
	if r.Phase != rotator.PhaseDone || !e.iss.isRevoked(old.IssuerID) {
		t.Fatalf("did not complete after recovery: %s", r.Phase)
	}
}

// A sink that reports the old value as current right before the revoke
// stops it (the engine re-checks, it does not trust its own record).
func TestRevokeRechecksSinks(t *testing.T) {
	e := newEnv(t)
	e.bootstrap()
	old := e.creds()[1]
	e.src.set(1, nil) // hold the rotation in draining
	r := e.run(e.trigger(rotator.TriggerManual, "").ID, 10)
	if r.Phase != rotator.PhaseDraining {
		t.Fatalf("phase %s", r.Phase)
	}
	e.sinks[0].mu.Lock()
	v := e.sinks[0].vals["api"]
	v.cur, v.prev = v.prev, v.cur
	e.sinks[0].mu.Unlock()
	e.src.set(0, nil)
	r = e.run(r.ID, 10)
	if e.iss.isRevoked(old.IssuerID) {
		t.Fatal("revoked although a sink holds the old key as current")
	}
	if r.ErrorReason != rotator.ReasonInvariant {
		t.Fatalf("want an invariant error, got %q (%s)", r.ErrorReason, r.LastError)
	}
}

func TestDrainTimeoutEscalatesAndWaitsForHuman(t *testing.T) {
	for name, tc := range map[string]struct {
		decide func(e *env, id string) error
		want   rotator.Phase
		oldRev bool
	}{
		"approve revokes anyway": {
			decide: func(e *env, id string) error {
				_, err := e.engine.Decide(e.ctx, rotator.ApproveRequest{RotationID: id, Approver: "bob", Verdict: rotator.VerdictApprove, Via: "test"})
				return err
			},
			want: rotator.PhaseDone, oldRev: true,
		},
		"cancel rolls back": {
			decide: func(e *env, id string) error {
				_, err := e.engine.Cancel(e.ctx, id, "bob", "consumer stuck")
				return err
			},
			want: rotator.PhaseCancelled, oldRev: false,
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.bootstrap()
			old := e.creds()[1]
			e.src.set(2, nil)
			r := e.run(e.trigger(rotator.TriggerManual, "").ID, 200)
			if r.Hold != rotator.HoldDrainTimeout {
				t.Fatalf("want drain_timeout hold, got %s/%s", r.Phase, r.Hold)
			}
			if e.iss.isRevoked(old.IssuerID) {
				t.Fatal("revoked on a timer")
			}
			if !slices.Contains(e.notesKinds(), rotator.EventHeld) {
				t.Fatalf("no escalation notified: %v", e.notesKinds())
			}
			// Time alone changes nothing.
			e.clock.Advance(48 * time.Hour)
			e.engine.RunOnce(e.ctx)
			if e.iss.isRevoked(old.IssuerID) {
				t.Fatal("revoked after more time passed")
			}
			if err := tc.decide(e, r.ID); err != nil {
				t.Fatal(err)
			}
			r = e.run(r.ID, 100)
			if r.Phase != tc.want || e.iss.isRevoked(old.IssuerID) != tc.oldRev {
				t.Fatalf("phase %s, old revoked %v", r.Phase, e.iss.isRevoked(old.IssuerID))
			}
			if tc.want == rotator.PhaseCancelled {
				for i, s := range e.sinks {
					if rotator.Fingerprint(s.current("api")) != old.Fingerprint {
						t.Fatalf("sink %d does not hold the old key again", i)
					}
				}
				if n := e.creds()[2]; n.State != rotator.CredRevoked || !e.iss.isRevoked(n.IssuerID) {
					t.Fatal("new credential not revoked by the rollback")
				}
			}
		})
	}
}

func (e *env) notesKinds() []string {
	e.engine.Close(time.Second) // flush
	return e.notes.kinds()
}

func TestPermanentErrorBeforeCutOverRollsBack(t *testing.T) {
	e := newEnv(t)
	e.bootstrap()
	old := e.creds()[1]
	e.sinks[1].failOn("stage", rotator.PermanentReason(rotator.ReasonNotManaged, errors.New("file sink: api.json is not managed by rekey")))
	r := e.run(e.trigger(rotator.TriggerManual, "").ID, 20)
	if r.Phase != rotator.PhaseFailed {
		t.Fatalf("phase %s", r.Phase)
	}
	if !strings.Contains(r.Outcome, "not managed") {
		t.Fatalf("outcome %q lacks the reason", r.Outcome)
	}
	c := e.creds()
	if c[1].State != rotator.CredCurrent || c[2].State != rotator.CredRevoked || !e.iss.isRevoked(c[2].IssuerID) || e.iss.isRevoked(old.IssuerID) {
		t.Fatalf("rollback incomplete: %+v %+v", c[1], c[2])
	}
	if e.iss.liveCount() != 1 {
		t.Fatalf("orphan: %d live credentials at the issuer", e.iss.liveCount())
	}
}

func TestPermanentErrorAfterRevokeHoldsForHuman(t *testing.T) {
	e := newEnv(t)
	e.bootstrap()
	e.key.Drain.QuietPeriod = 0
	e.sinks[0].failOn("cleanup", rotator.Permanent(errors.New("vault: permission denied on kv/api")))
	r := e.run(e.trigger(rotator.TriggerManual, "").ID, 100)
	if r.Phase != rotator.PhaseCleaning || r.Hold != rotator.HoldFailed {
		t.Fatalf("want held in cleaning, got %s/%s", r.Phase, r.Hold)
	}
	if _, err := e.engine.Cancel(e.ctx, r.ID, "bob", ""); !errors.Is(err, rotator.ErrBadState) {
		t.Fatalf("cancel past the point of no return: %v", err)
	}
	e.sinks[0].failOn("cleanup", nil)
	if _, err := e.engine.Retry(e.ctx, r.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	if r = e.run(r.ID, 20); r.Phase != rotator.PhaseDone {
		t.Fatalf("phase after retry %s", r.Phase)
	}
}

func TestBackoffGrows(t *testing.T) {
	e := newEnv(t)
	e.bootstrap()
	e.iss.mint = func(rotator.MintRequest) error {
		return rotator.HTTPStatusError("fake issuer", 503, "unavailable")
	}
	r := e.trigger(rotator.TriggerManual, "")
	var delays []time.Duration
	for range 4 {
		e.engine.RunOnce(e.ctx)
		r, _ = e.store.GetRotation(e.ctx, r.ID)
		delays = append(delays, r.NextAttemptAt.Sub(e.clock.Now()))
		e.clock.Set(r.NextAttemptAt)
	}
	if r.Attempts != 4 || r.ErrorReason != rotator.ReasonTransient || r.Phase != rotator.PhaseMinting {
		t.Fatalf("attempts %d reason %s phase %s", r.Attempts, r.ErrorReason, r.Phase)
	}
	for i := 1; i < len(delays); i++ {
		if delays[i] <= delays[i-1] {
			t.Fatalf("backoff does not grow: %v", delays)
		}
	}
	e.iss.mint = nil
	if r = e.run(r.ID, 100); r.Phase != rotator.PhaseDone {
		t.Fatalf("did not recover: %s", r.Phase)
	}
}

// Invariant 6: many concurrent triggers, one rotation.
func TestConcurrentTriggersYieldOneRotation(t *testing.T) {
	e := newEnv(t)
	e.bootstrap()
	var wg sync.WaitGroup
	var mu sync.Mutex
	ids := map[string]int{}
	created := 0
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := e.engine.Trigger(e.ctx, rotator.TriggerRequest{Key: "api", Trigger: rotator.TriggerManual, Actor: "x"})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				created++
				ids[r.ID]++
			case errors.Is(err, rotator.ErrActiveRotation):
				ids[r.ID]++
			default:
				t.Errorf("trigger: %v", err)
			}
		}()
	}
	wg.Wait()
	if created != 1 || len(ids) != 1 {
		t.Fatalf("created %d rotations, saw ids %v", created, ids)
	}
}

// Crash between the issuer's mint and its record: the restarted engine finds
// the orphan by its deterministic name and revokes it before minting again.
func TestOrphanFromInterruptedMintIsRevoked(t *testing.T) {
	e := newEnv(t)
	e.bootstrap()
	crash := e.newEngine(func(name string) {
		if name == "minting:after" {
			runtime.Goexit()
		}
	})
	r := e.trigger(rotator.TriggerManual, "")
	func() {
		defer func() { _ = recover() }()
		crash.RunOnce(e.ctx)
	}()
	if e.iss.liveCount() != 2 {
		t.Fatalf("expected the orphan to exist, live=%d", e.iss.liveCount())
	}
	// The crashed engine's lease must expire before another daemon takes over.
	e.clock.Advance(10 * time.Minute)
	r = e.run(r.ID, 100)
	if r.Phase != rotator.PhaseDone {
		t.Fatalf("phase %s: %s", r.Phase, r.LastError)
	}
	if e.iss.liveCount() != 1 {
		t.Fatalf("orphan left: %d live credentials", e.iss.liveCount())
	}
	if !slices.Contains(e.actions(r.ID), "orphan.revoked") {
		t.Fatal("orphan revocation not audited")
	}
}

// Crash after staging: a new engine has no secret in memory and reads it
// back from a sink; with no sink able to, it abandons the generation.
func TestSecretLostAfterCrash(t *testing.T) {
	for name, tc := range map[string]struct {
		hideReader bool
		crashAt    string
		wantGen    int
	}{
		"read back from a sink":                  {crashAt: "staging:after", wantGen: 2},
		"no sink can read: abandoned, re-mint":   {crashAt: "staging:after", hideReader: true, wantGen: 3},
		"nothing staged yet: abandoned, re-mint": {crashAt: "staging:before", wantGen: 3},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.key.Verify = false
			e.bootstrap()
			if tc.hideReader {
				for i := range e.key.Sinks {
					e.key.Sinks[i].Sink = e.sinks[i]
				}
			}
			crash := e.newEngine(func(name string) {
				if name == tc.crashAt {
					runtime.Goexit()
				}
			})
			r := e.trigger(rotator.TriggerManual, "")
			func() {
				defer func() { _ = recover() }()
				crash.RunOnce(e.ctx)
			}()
			e.clock.Advance(10 * time.Minute)
			e.engine = e.newEngine(nil)
			r = e.run(r.ID, 200)
			if r.Phase != rotator.PhaseDone {
				t.Fatalf("phase %s: %s", r.Phase, r.LastError)
			}
			c := e.creds()
			var current []int
			for g, cr := range c {
				if cr.State == rotator.CredCurrent {
					current = append(current, g)
				}
				if cr.State == rotator.CredRevoked && !e.iss.isRevoked(cr.IssuerID) && cr.IssuerID != "" {
					t.Fatalf("generation %d recorded revoked but live at the issuer", g)
				}
			}
			if len(current) != 1 || current[0] != tc.wantGen {
				t.Fatalf("current generations %v, want [%d]", current, tc.wantGen)
			}
			if e.iss.liveCount() != 1 {
				t.Fatalf("%d live credentials at the issuer, want 1", e.iss.liveCount())
			}
		})
	}
}

// Invariant 3 at the engine level: the secrets minted in a run appear in no
// audit event, rotation field or notification.
func TestNoSecretInAuditOrNotifications(t *testing.T) {
	e := newEnv(t)
	e.bootstrap()
	e.sinks[0].failOn("promote", rotator.WithReason(rotator.ReasonTransient, errors.New("flaky")))
	r := e.trigger(rotator.TriggerManual, "")
	r = e.run(r.ID, 5)
	e.sinks[0].failOn("promote", nil)
	r = e.run(r.ID, 100)
	e.run(e.trigger(rotator.TriggerExposure, "").ID, 50)
	evs, err := e.store.Audit(e.ctx, rotator.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var hay strings.Builder
	for _, ev := range evs {
		hay.WriteString(rotator.MarshalDetail(ev.Detail) + ev.Action + ev.Actor)
	}
	rots, _ := e.store.ListRotations(e.ctx, rotator.RotationFilter{})
	for _, x := range rots {
		hay.WriteString(x.LastError + x.Outcome + x.HoldDetail + x.Reason)
	}
	e.engine.Close(time.Second)
	hay.WriteString(e.notes.text())
	secrets := e.iss.allSecrets()
	if len(secrets) < 3 {
		t.Fatalf("only %d secrets minted", len(secrets))
	}
	for _, s := range secrets {
		if strings.Contains(hay.String(), s) {
			t.Fatalf("secret found in audit, rotations or notifications")
		}
	}
	_ = r
}

// DriveOne drives only the rotation it is given: another due rotation is
// left alone (RunOnce would drive it).
func TestDriveOneDrivesOnlyThatRotation(t *testing.T) {
	e := newEnv(t)
	e.bootstrap()
	r := e.trigger(rotator.TriggerManual, "")
	e.engine.DriveOne(e.ctx, "rot_someone_else")
	if got, _ := e.store.GetRotation(e.ctx, r.ID); got.Version != r.Version || got.Phase != r.Phase {
		t.Fatalf("driving another rotation moved this one: %s v%d → %s v%d", r.Phase, r.Version, got.Phase, got.Version)
	}
	e.engine.DriveOne(e.ctx, r.ID)
	if got, _ := e.store.GetRotation(e.ctx, r.ID); got.Version == r.Version {
		t.Fatalf("DriveOne did not drive its rotation (still %s)", got.Phase)
	}
}
