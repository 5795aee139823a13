package rotator_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// step runs the engine once at the current fake time and returns the
// rotation as the store holds it.
func (e *env) step(id string) *rotator.Rotation {
	e.t.Helper()
	e.engine.RunOnce(e.ctx)
	r, err := e.store.GetRotation(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// runToPhase drives a rotation until it reaches phase p (or fails the test).
func (e *env) runToPhase(id string, p rotator.Phase) *rotator.Rotation {
	e.t.Helper()
	for range 100 {
		r := e.step(id)
		if r.Phase == p {
			return r
		}
		if r.Phase.Terminal() || r.Hold != rotator.HoldNone {
			e.t.Fatalf("rotation stopped in %s/%s before %s", r.Phase, r.Hold, p)
		}
		e.clock.Set(r.NextAttemptAt)
	}
	e.t.Fatalf("rotation never reached %s", p)
	return nil
}

func wantWaiting(t *testing.T, r *rotator.Rotation, reason rotator.WaitReason) *rotator.Waiting {
	t.Helper()
	w := r.Waiting
	if w == nil {
		t.Fatalf("%s/%s: no waiting state, want %s", r.Phase, r.Hold, reason)
	}
	if w.Reason != reason {
		t.Fatalf("%s/%s: waiting %s (%s), want %s", r.Phase, r.Hold, w.Reason, w.Detail, reason)
	}
	if w.Detail == "" || w.Since.IsZero() {
		t.Fatalf("waiting %s lacks detail or since: %+v", reason, w)
	}
	return w
}

// A dead traffic source while draining shows the source's error; once it
// answers zero, the quiet period counts up with a deadline at max_wait.
func TestWaitingDrainShowsSourceErrorThenQuietProgress(t *testing.T) {
	e := newEnv(t)
	e.bootstrap()
	e.src.set(0, errors.New("prometheus: dial tcp 127.0.0.1:9: connection refused"))
	r := e.trigger(rotator.TriggerManual, "")
	r = e.runToPhase(r.ID, rotator.PhaseDraining)
	r = e.step(r.ID) // first poll
	w := wantWaiting(t, r, rotator.WaitTrafficError)
	if !strings.Contains(w.LastError, "connection refused") || w.NextCheck.IsZero() || w.Deadline.IsZero() {
		t.Fatalf("traffic error waiting: %+v", w)
	}
	errSince := w.Since
	e.clock.Set(r.NextAttemptAt)
	r = e.step(r.ID)
	if w = wantWaiting(t, r, rotator.WaitTrafficError); !w.Since.Equal(errSince) {
		t.Fatalf("since moved while the reason stayed: %v → %v", errSince, w.Since)
	}
	e.src.set(0, nil)
	e.clock.Set(r.NextAttemptAt)
	r = e.step(r.ID)
	for range 2 { // quiet time accrues between consecutive polls
		e.clock.Advance(time.Minute)
		r = e.step(r.ID)
	}
	w = wantWaiting(t, r, rotator.WaitQuietPeriod)
	if w.Progress == nil || w.Progress.Unit != "s" || w.Progress.Of != 300 || w.Progress.Done != 120 {
		t.Fatalf("quiet progress %+v, want 120 of 300 s", w.Progress)
	}
	if w.LastError != "" {
		t.Fatalf("last error kept after the source answered: %q", w.LastError)
	}
	if r = e.run(r.ID, 100); r.Phase != rotator.PhaseDone || r.Waiting != nil {
		t.Fatalf("ended %s with waiting %+v", r.Phase, r.Waiting)
	}
}

// A failing issuer shows retry backoff with the last error and the next try.
func TestWaitingRetryBackoffShowsLastError(t *testing.T) {
	e := newEnv(t)
	e.bootstrap()
	e.iss.mint = func(rotator.MintRequest) error { return rotator.HTTPStatusError("fake issuer", 503, "unavailable") }
	r := e.trigger(rotator.TriggerManual, "")
	for range 3 {
		r = e.step(r.ID)
		e.clock.Set(r.NextAttemptAt)
	}
	r = e.step(r.ID)
	w := wantWaiting(t, r, rotator.WaitRetryBackoff)
	if !strings.Contains(w.LastError, "503") || !w.NextCheck.Equal(r.NextAttemptAt) || !strings.Contains(w.Detail, "4 time") {
		t.Fatalf("retry waiting: %+v (next attempt %v)", w, r.NextAttemptAt)
	}
}

// A cancelled rotation whose consumers already read the new key shows that
// it waits for them to move back.
func TestWaitingRollingBackAfterCancel(t *testing.T) {
	e := newEnv(t)
	e.bootstrap()
	e.src.set(1, nil)
	r := e.trigger(rotator.TriggerManual, "")
	r = e.runToPhase(r.ID, rotator.PhaseDraining)
	if _, err := e.engine.Cancel(e.ctx, r.ID, "bob", "consumer stuck"); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		r = e.step(r.ID)
		if r.Waiting != nil && r.Waiting.Reason == rotator.WaitRollingBack {
			break
		}
		e.clock.Set(r.NextAttemptAt)
	}
	w := wantWaiting(t, r, rotator.WaitRollingBack)
	if r.Phase != rotator.PhaseRollingBack || w.Progress == nil || w.Progress.Of != 300 {
		t.Fatalf("rolling back waiting in %s: %+v", r.Phase, w)
	}
}

// An approval gate shows how many approvals of how many, and its expiry.
func TestWaitingApprovalProgressAndDeadline(t *testing.T) {
	e := newEnv(t)
	e.bootstrap()
	e.key.Approval = rotator.ApprovalPolicy{Gates: []rotator.Gate{rotator.GateStart}, Approvers: []string{"bob", "carol"}, Required: 2, ExpireAfter: time.Hour}
	r := e.trigger(rotator.TriggerManual, "")
	r = e.step(r.ID)
	w := wantWaiting(t, r, rotator.WaitApproval)
	if w.Progress == nil || w.Progress.Done != 0 || w.Progress.Of != 2 || w.Progress.Unit != "approvals" {
		t.Fatalf("approval progress %+v", w.Progress)
	}
	if want := r.PhaseStartedAt.Add(time.Hour); !w.Deadline.Equal(want) {
		t.Fatalf("deadline %v, want %v", w.Deadline, want)
	}
	decided, err := e.engine.Decide(e.ctx, rotator.ApproveRequest{RotationID: r.ID, Approver: "bob", Verdict: rotator.VerdictApprove, Via: "test"})
	if err != nil {
		t.Fatal(err)
	}
	// The answer to the decision already counts it (what `rekey approve`
	// prints), before the engine's next step.
	if w := wantWaiting(t, decided, rotator.WaitApproval); w.Progress.Done != 1 || w.Progress.Of != 2 || decided.HoldDetail != "start approval 1/2" {
		t.Fatalf("answer to the approval: %+v, %q", w.Progress, decided.HoldDetail)
	}
	r = e.step(r.ID)
	if w = wantWaiting(t, r, rotator.WaitApproval); w.Progress.Done != 1 {
		t.Fatalf("after one approval: %+v", w.Progress)
	}
}

// genSource answers old-key use as consumer attestations do: the number
// of consumers not on the query's new generation; it records the queries.
type genSource struct {
	mu      sync.Mutex
	holding int // the generation the one consumer holds
	queries []rotator.TrafficQuery
}

func (g *genSource) Unauthorized(_ context.Context, q rotator.TrafficQuery) (rotator.Reading, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.queries = append(g.queries, q)
	if q.Question != rotator.OldKeyUse || q.NewGeneration == 0 {
		return rotator.Reading{}, rotator.Permanent(errors.New("no new generation to compare attestations with"))
	}
	if g.holding != q.NewGeneration {
		return rotator.Reading{Value: 1}, nil
	}
	return rotator.Reading{}, nil
}

// A rollback asks the gate's old-key-use checks with the generations
// swapped (drain away from the new one, towards the one restored), and
// ends once the consumer is back on the restored generation. On the code
// before, it asked the first source with no generation: a consumers
// source answered with an error until max_wait.
func TestRollbackAsksWhetherTheNewKeyIsStillUsed(t *testing.T) {
	src := &genSource{holding: 1}
	e := newEnv(t)
	e.key.Drain = rotator.DrainPolicy{Source: src, SourceName: "attested", QuietPeriod: time.Minute, MaxWait: 24 * time.Hour, PollInterval: 10 * time.Second,
		Checks: []rotator.DrainCheck{{Question: rotator.OldKeyUse, Source: src, SourceName: "attested"}}}
	e.engine = e.newEngine(nil)
	e.bootstrap()
	r := e.trigger(rotator.TriggerManual, "")
	r = e.runToPhase(r.ID, rotator.PhaseDraining)
	src.mu.Lock()
	src.holding = 2 // the consumer moved to the new generation
	src.mu.Unlock()
	if _, err := e.engine.Cancel(e.ctx, r.ID, "bob", "a consumer fails"); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		r = e.step(r.ID)
		if r.Phase == rotator.PhaseRollingBack && r.Waiting != nil && r.Waiting.Reason == rotator.WaitRollingBack {
			break
		}
		e.clock.Set(r.NextAttemptAt)
	}
	if r.Phase != rotator.PhaseRollingBack || r.Drain.LastError != "" || r.Drain.LastValue != 1 {
		t.Fatalf("rolling back with the consumer still on generation 2: %s, value %v, error %q", r.Phase, r.Drain.LastValue, r.Drain.LastError)
	}
	src.mu.Lock()
	last := src.queries[len(src.queries)-1]
	src.holding = 1 // back on the restored generation
	src.mu.Unlock()
	if last.Question != rotator.OldKeyUse || last.OldGeneration != 2 || last.NewGeneration != 1 {
		t.Fatalf("the rollback asked %+v", last)
	}
	for range 50 {
		if r = e.step(r.ID); r.Phase.Terminal() {
			break
		}
		e.clock.Set(r.NextAttemptAt)
	}
	if r.Phase != rotator.PhaseCancelled {
		t.Fatalf("rollback ended %s (%s)", r.Phase, r.LastError)
	}
}
