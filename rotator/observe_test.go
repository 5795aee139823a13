package rotator_test

import (
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// auditDetail returns the detail of the last audit event named action of a
// rotation (nil when there is none).
func (e *env) auditDetail(id, action string) map[string]string {
	e.t.Helper()
	evs, err := e.store.Audit(e.ctx, rotator.AuditFilter{RotationID: id})
	if err != nil {
		e.t.Fatal(err)
	}
	var out map[string]string
	for _, ev := range evs {
		if ev.Action == action {
			out = ev.Detail
			if out == nil {
				out = map[string]string{}
			}
		}
	}
	return out
}

// restart replaces the engine, as a daemon killed and started again.
func (e *env) restart() { e.engine = e.newEngine(nil) }

// Daemon downtime is not quiet time: the drain gate passes only after
// quiet_period of consecutive zero readings. Polls a little late (a busy
// engine) continue the observation; a gap longer than the poll interval
// plus slack — here a daemon down for 10 minutes, twice the quiet period —
// restarts the quiet clock at the first reading after it.
func TestDrainQuietClockRestartsAfterGapInObservation(t *testing.T) {
	e := newEnv(t) // quiet_period 5m, poll_interval 1m
	e.bootstrap()
	r := e.trigger(rotator.TriggerManual, "")
	r = e.runToPhase(r.ID, rotator.PhaseDraining)
	for r.Drain.QuietSince.IsZero() {
		e.clock.Set(r.NextAttemptAt)
		r = e.step(r.ID)
	}
	quietSince := r.Drain.QuietSince
	// Two polls each 5s late: still one observation.
	for range 2 {
		e.clock.Set(r.NextAttemptAt.Add(5 * time.Second))
		r = e.step(r.ID)
	}
	if r.Phase != rotator.PhaseDraining || !r.Drain.QuietSince.Equal(quietSince) {
		t.Fatalf("late polls broke the observation: %s, quiet since %v (was %v)", r.Phase, r.Drain.QuietSince, quietSince)
	}

	// kill -9, restart 10 minutes later.
	e.clock.Advance(10 * time.Minute)
	e.restart()
	restartedAt := e.clock.Now()
	r = e.step(r.ID)
	if r.Phase != rotator.PhaseDraining || e.iss.isRevoked(e.creds()[1].IssuerID) {
		t.Fatalf("the first poll after 10 minutes down passed the gate: %s (%s)", r.Phase, strings.Join(e.actions(r.ID), ","))
	}
	if !r.Drain.QuietSince.Equal(restartedAt) {
		t.Fatalf("quiet since %v, want the first reading after the gap (%v)", r.Drain.QuietSince, restartedAt)
	}
	gap := e.auditDetail(r.ID, "drain.quiet_restarted")
	if gap == nil || gap["gap"] != "10m0s" {
		t.Fatalf("no audit of the restart with the gap: %v", gap)
	}
	w := wantWaiting(t, r, rotator.WaitQuietPeriod)
	if !strings.Contains(w.Detail, "quiet clock restarted after a 10m0s gap in observation") || w.Progress == nil || w.Progress.Done != 0 {
		t.Fatalf("waiting does not show the restart: %+v", w)
	}

	r = e.run(r.ID, 200)
	if r.Phase != rotator.PhaseDone {
		t.Fatalf("ended %s/%s: %s", r.Phase, r.Hold, r.LastError)
	}
	evs, err := e.store.Audit(e.ctx, rotator.AuditFilter{RotationID: r.ID})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Action == "drained" && ev.At.Sub(restartedAt) < 5*time.Minute {
			t.Fatalf("drained %s after the restart, before a full quiet period of observation: %v", ev.At.Sub(restartedAt), ev.Detail)
		}
	}
}

// The post-revoke watch counts the time it looked, not the time that
// passed: a daemon down for longer than the whole watch period does not
// end the watch on its first poll after the restart.
func TestWatchDoesNotCountGapInObservation(t *testing.T) {
	e := newEnv(t) // watch period 10m, poll_interval 1m
	e.bootstrap()
	r := e.trigger(rotator.TriggerManual, "")
	r = e.runToPhase(r.ID, rotator.PhaseWatching)
	for r.Watch.LastPollAt.IsZero() || r.Watch.Observed < 2*time.Minute {
		e.clock.Set(r.NextAttemptAt)
		r = e.step(r.ID)
	}
	e.clock.Advance(30 * time.Minute)
	e.restart()
	restartedAt := e.clock.Now()
	r = e.step(r.ID)
	if r.Phase != rotator.PhaseWatching {
		t.Fatalf("the first poll after 30 minutes down ended the watch: %s", r.Phase)
	}
	w := wantWaiting(t, r, rotator.WaitWatching)
	if !strings.Contains(w.Detail, "1 gap(s) in observation not counted") || w.Progress.Done != 120 {
		t.Fatalf("watch waiting: %+v", w)
	}
	r = e.run(r.ID, 200)
	if r.Phase != rotator.PhaseDone {
		t.Fatalf("ended %s/%s: %s", r.Phase, r.Hold, r.LastError)
	}
	watched := e.auditDetail(r.ID, "watched")
	if watched["gaps"] != "1" || watched["observed"] != "10m0s" {
		t.Fatalf("watched: %v", watched)
	}
	if !r.FinishedAt.After(restartedAt.Add(8*time.Minute - time.Second)) {
		t.Fatalf("watch ended %s after the restart, before the rest of its period", r.FinishedAt.Sub(restartedAt))
	}
}

// A rollback whose consumers already read the new key waits for the quiet
// period before revoking it; a gap in observation restarts that wait too.
func TestRollbackWaitRestartsAfterGapInObservation(t *testing.T) {
	e := newEnv(t) // quiet_period 5m, poll_interval 1m
	e.bootstrap()
	r := e.trigger(rotator.TriggerManual, "")
	r = e.runToPhase(r.ID, rotator.PhaseDraining)
	if _, err := e.engine.Cancel(e.ctx, r.ID, "bob@example.com", "consumer stuck"); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if r = e.step(r.ID); r.Phase == rotator.PhaseRollingBack && !r.Drain.QuietSince.IsZero() {
			break
		}
		e.clock.Set(r.NextAttemptAt)
	}
	if r.Phase != rotator.PhaseRollingBack || r.Drain.RestoredAt.IsZero() || r.Drain.QuietSince.IsZero() {
		t.Fatalf("want rolling back, waiting for consumers: %s %+v", r.Phase, r.Drain)
	}
	newGen := e.creds()[2]
	e.clock.Advance(10 * time.Minute)
	e.restart()
	restartedAt := e.clock.Now()
	if r = e.step(r.ID); r.Phase != rotator.PhaseRollingBack || e.iss.isRevoked(newGen.IssuerID) {
		t.Fatalf("the first poll after 10 minutes down revoked the new key consumers may still read: %s", r.Phase)
	}
	w := wantWaiting(t, r, rotator.WaitRollingBack)
	if !strings.Contains(w.Detail, "quiet clock restarted after a 10m0s gap in observation") {
		t.Fatalf("waiting: %+v", w)
	}
	if r = e.run(r.ID, 100); r.Phase != rotator.PhaseCancelled || !e.iss.isRevoked(newGen.IssuerID) {
		t.Fatalf("ended %s", r.Phase)
	}
	if r.FinishedAt.Sub(restartedAt) < 5*time.Minute {
		t.Fatalf("new key revoked %s after the restart, before a quiet period of observation", r.FinishedAt.Sub(restartedAt))
	}
}

// A gap is measured against the schedule too: with a poll interval close
// to the quiet period (4m of 5m) the interval-based allowance (4m + 2m)
// is longer than the quiet period itself, so a daemon down from the first
// zero reading until 5m30s later would have passed the gate on one reading
// after the restart. A poll later than its scheduled time by more than the
// slack restarts the quiet clock.
func TestDrainQuietClockRestartsWhenAPollIsLateAgainstItsSchedule(t *testing.T) {
	e := newEnv(t)
	e.key.Drain.PollInterval = 4 * time.Minute // quiet_period 5m
	e.bootstrap()
	r := e.runToPhase(e.trigger(rotator.TriggerManual, "").ID, rotator.PhaseDraining)
	for r.Drain.QuietSince.IsZero() {
		e.clock.Set(r.NextAttemptAt)
		r = e.step(r.ID)
	}
	e.clock.Set(r.Drain.QuietSince.Add(5*time.Minute + 30*time.Second)) // the next poll was due 4m after
	e.restart()
	back := e.clock.Now()
	r = e.step(r.ID)
	if r.Phase != rotator.PhaseDraining || e.iss.isRevoked(e.creds()[1].IssuerID) {
		t.Fatalf("one reading after an unobserved 5m30s passed a 5m quiet period: %s (%s)", r.Phase, strings.Join(e.actions(r.ID), ","))
	}
	if !r.Drain.QuietSince.Equal(back) || e.auditDetail(r.ID, "drain.quiet_restarted") == nil {
		t.Fatalf("quiet since %v, want the reading after the gap (%v), audited", r.Drain.QuietSince, back)
	}
}
