package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/testing/consumer"
)

// brokenKey is what a consumer with a mangled copy of the key sends: well
// formed, never minted, so the server answers 401 and cannot tell whose key
// it was (key_id="unknown").
const brokenKey = "ka_live_BrokenCopyOfTheKeyNotMinted00000"

// holdsFor checks, for d, that the rotation keeps draining without a
// decision being needed (no hold unless hold is set), that nothing was
// revoked at the issuer and that the audit trail has no revoke; ok is
// called on every reading.
func (s *zdStack) holdsFor(id string, d time.Duration, hold string, ok func(zdRotation) error) zdRotation {
	s.t.Helper()
	var r zdRotation
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		r = s.rotation(id)
		if r.Phase != "draining" || r.Hold != hold {
			s.t.Fatalf("rotation %s left the drain (phase %s, hold %q): %+v", id, r.Phase, r.Hold, r)
		}
		if err := ok(r); err != nil {
			s.t.Fatalf("rotation %s while draining: %v: %+v", id, err, r)
		}
		for _, k := range s.ka.Keys() {
			if k.Status != "active" {
				s.t.Fatalf("key %s was revoked while the gate held", k.Name)
			}
		}
	}
	if events := s.audit(id); hasEvent(events, "drained") || hasEvent(events, "revoked") {
		s.t.Fatalf("the audit trail shows the gate passed: %+v", events)
	}
	return r
}

// A consumer that already fails before the revoke — its copy of the key is
// broken — keeps the gate from passing: its 401s are on the gate's query,
// so the quiet period never starts, however long the drain waits. Once it
// is fixed (here: stopped), the 401s leave the window and the gate passes
// after a full quiet period.
func TestFailingConsumerHoldsTheGate(t *testing.T) {
	t.Parallel()
	const quiet = 2 * time.Second
	s := newZDStack(t, zdOptions{Quiet: quiet, MaxWait: time.Minute, Watch: time.Second})
	follower := s.startConsumer("follower", 200*time.Millisecond, s.fileSource())
	broken := s.startConsumer("broken", 0, []string{"-key-env", "BROKEN_KEY"}, "BROKEN_KEY="+brokenKey)
	follower.waitServed(10, 15*time.Second)
	waitLive(t, broken, "401s", func(r consumer.Report) bool { return r.ByStatus["401"] >= 10 })

	r := s.rotate("a consumer fails before the revoke")
	s.waitFor(r.ID, "draining", 20*time.Second, func(r zdRotation) bool { return r.Phase == "draining" })
	held := s.holdsFor(r.ID, 3*quiet, "", func(r zdRotation) error {
		if r.Drain.Polls > 2 && r.Drain.LastValue <= 0 {
			return errNoRate
		}
		return nil
	})
	if !held.Drain.QuietSince.IsZero() || held.Drain.LastValue <= 0 || held.Drain.Polls < 10 {
		t.Fatalf("the gate did not see the 401s: %+v", held.Drain)
	}

	fixed := broken.stop()
	lastFailure := fixed.Spans[len(fixed.Spans)-1].LastAnsweredAt
	done := s.waitDone(r.ID, 30*time.Second)
	if done.Phase != "done" {
		t.Fatalf("rotation ended %s: %s %s", done.Phase, done.Outcome, done.LastError)
	}
	fol := follower.stop()
	t.Log(summary("follower", fol))
	t.Log(summary("broken", fixed))
	events := s.audit(r.ID)
	drained, revoked := event(t, events, "drained"), event(t, events, "revoked")
	if q, err := time.ParseDuration(drained.Detail["quiet_for"]); err != nil || q < quiet {
		t.Fatalf("drained after %q of quiet", drained.Detail["quiet_for"])
	}
	if revoked.At.Sub(lastFailure) < quiet {
		t.Fatalf("revoked %s after the last 401, less than the quiet period %s", revoked.At.Sub(lastFailure), quiet)
	}
	if fol.Failures != 0 {
		t.Fatalf("the following consumer failed %d requests: %v", fol.Failures, fol.ByStatus)
	}
	t.Logf("figures: gate held %d polls at a 401 rate of %g/s while the broken consumer ran (%d × 401); revoked %s after its last 401 (quiet period %s)",
		held.Drain.Polls, held.Drain.LastValue, fixed.ByStatus["401"], revoked.At.Sub(lastFailure).Round(time.Millisecond), quiet)
	s.d.stop()
	s.w.scanForSecrets()
}

// Prometheus hangs, then is down, during the drain: an unanswered query is
// never zero, so the gate holds — nothing is revoked, the rotation's drain
// state carries the error — and the rotation completes on its own once
// Prometheus is back and shows a real zero for the quiet period.
func TestPrometheusOutageHoldsTheGate(t *testing.T) {
	t.Parallel()
	const quiet = 2 * time.Second
	s := newZDStack(t, zdOptions{Quiet: quiet, MaxWait: time.Minute, Watch: time.Second, Vault: true})
	consumers := map[string]*consumerProc{
		"file":  s.startConsumer("file", 200*time.Millisecond, s.fileSource()),
		"vault": s.startConsumer("vault", 200*time.Millisecond, s.vaultSource()),
	}
	for _, c := range consumers {
		c.waitServed(10, 15*time.Second)
	}

	r := s.rotate("prometheus outage")
	s.waitFor(r.ID, "draining", 20*time.Second, func(r zdRotation) bool { return r.Phase == "draining" })
	outage := time.Now()
	if err := s.prom.Pause(); err != nil { // a hang: every query times out
		t.Fatal(err)
	}
	s.waitFor(r.ID, "drain error", 10*time.Second, func(r zdRotation) bool { return r.Drain.LastError != "" })
	hung := s.holdsFor(r.ID, 2*quiet, "", func(r zdRotation) error {
		if r.Drain.LastError == "" || !r.Drain.QuietSince.IsZero() {
			return errNotHeld
		}
		return nil
	})
	if err := s.prom.Stop(); err != nil { // now down: connections refused
		t.Fatal(err)
	}
	down := s.holdsFor(r.ID, quiet+time.Second, "", func(r zdRotation) error {
		if r.Drain.LastError == "" {
			return errNotHeld
		}
		return nil
	})
	if !strings.Contains(down.Drain.LastError, "refused") {
		t.Fatalf("drain error while Prometheus is down: %q", down.Drain.LastError)
	}
	back := time.Now()
	if err := s.prom.Start(); err != nil {
		t.Fatal(err)
	}
	done := s.waitDone(r.ID, 30*time.Second)
	if done.Phase != "done" {
		t.Fatalf("rotation ended %s: %s %s", done.Phase, done.Outcome, done.LastError)
	}
	events := s.audit(r.ID)
	drained, revoked := event(t, events, "drained"), event(t, events, "revoked")
	if q, err := time.ParseDuration(drained.Detail["quiet_for"]); err != nil || q < quiet {
		t.Fatalf("drained after %q of quiet", drained.Detail["quiet_for"])
	}
	if revoked.At.Sub(back) < quiet {
		t.Fatalf("revoked %s after Prometheus came back, less than the quiet period", revoked.At.Sub(back))
	}
	for name, c := range consumers {
		rep := c.stop()
		t.Log(summary(name, rep))
		if rep.Failures != 0 {
			t.Errorf("consumer %s failed %d requests: %v", name, rep.Failures, rep.ByStatus)
		}
	}
	if s.kaKey(zdKey+"-v1").Status != "revoked" {
		t.Fatal("the old key was not revoked after all")
	}
	t.Logf("figures: outage %s (hung: %q; down: %q); revoked %s after Prometheus restarted; %d drain polls",
		back.Sub(outage).Round(time.Millisecond), clipText(hung.Drain.LastError), clipText(down.Drain.LastError), revoked.At.Sub(back).Round(time.Millisecond), done.Drain.Polls)
	s.d.stop()
	s.w.scanForSecrets()
}

type testError string

func (e testError) Error() string { return string(e) }

const (
	errNoRate  = testError("the gate reads no 401 rate")
	errNotHeld = testError("the gate has no error or counts quiet time")
)

func clipText(s string) string {
	if i := strings.LastIndex(s, ": "); i >= 0 && len(s) > 120 {
		return "…" + s[i:]
	}
	return s
}

// waitLive polls a consumer's live report until cond holds.
func waitLive(t *testing.T, c *consumerProc, what string, cond func(consumer.Report) bool) {
	t.Helper()
	deadline := patient(15 * time.Second)
	for !cond(c.live()) {
		if time.Now().After(deadline) {
			t.Fatalf("consumer %s: no %s: %+v", c.name, what, c.live())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
