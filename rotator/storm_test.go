package rotator_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// fleet adds n keys (key-1 … key-n) beside api, each with its own sink,
// and bootstraps every one.
func (w *crashWorld) fleet(n int) {
	w.t.Helper()
	for i := 1; i <= n; i++ {
		k := *w.key
		k.Name = fmt.Sprintf("key-%d", i)
		k.Sinks = []rotator.SinkBinding{{SinkName: "mem0", Sink: readerSink{newSink()}, Target: rotator.Target{Key: k.Name, Path: k.Name}}}
		w.extra = append(w.extra, &k)
	}
	w.restart("")
	for _, k := range append([]*rotator.Key{w.key}, w.extra...) {
		r, err := w.engine.Trigger(w.ctx, rotator.TriggerRequest{Key: k.Name, Trigger: rotator.TriggerBootstrap, Actor: "tester"})
		if err != nil {
			w.t.Fatal(err)
		}
		if r, _ = w.drive(r.ID, nil); r.Phase != rotator.PhaseDone {
			w.t.Fatalf("bootstrap of %s: %s", k.Name, r.Phase)
		}
	}
}

// reportCurrent reports key's current secret as exposed, from source via.
func (w *crashWorld) reportCurrent(key, id, via string) rotator.ExposureResult {
	w.t.Helper()
	creds, err := w.store.Credentials(w.ctx, key)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, c := range creds {
		if c.State == rotator.CredCurrent {
			res, err := w.engine.ReportExposure(w.ctx, rotator.ExposureReport{ID: id, Via: via, Source: "test", Fingerprint: c.Fingerprint})
			if err != nil || !res.Known {
				w.t.Fatalf("report %s: %+v %v", key, res, err)
			}
			return res
		}
	}
	w.t.Fatalf("%s has no current credential", key)
	return rotator.ExposureResult{}
}

// Twenty exposures within a minute: the first five revoke at once, the
// breaker opens with one critical notification, the other fifteen wait for
// a responder, and one release lets them all revoke. A source exempt from
// the breaker (one that proves possession) is never contained. The release
// is a responder's, whatever the keys' approval.approvers, and it handles
// each rotation on its own: one key the responder may not release leaves
// the others released.
func TestEmergencyBreakerContainsAStorm(t *testing.T) {
	w := newCrashWorld(t, true)
	w.key.Approval.Approvers = []string{"alice@example.com", "bob@example.com"} // not the responder
	w.fleet(20)
	w.engine.Close(time.Second)
	w.restart("")
	var ids []string
	for i := 1; i <= 20; i++ {
		res := w.reportCurrent(fmt.Sprintf("key-%d", i), fmt.Sprintf("r%d", i), "generic")
		ids = append(ids, res.RotationID)
		w.engine.RunOnce(w.ctx)
		w.clock.Advance(2 * time.Second)
	}
	revoked, contained := 0, 0
	for _, id := range ids {
		r, _ := w.store.GetRotation(w.ctx, id)
		switch {
		case r.Contain == rotator.ContainBreaker && r.Phase == rotator.PhaseRevoking && r.Hold == rotator.HoldApproval:
			contained++
		case r.Contain == "" && r.Phase != rotator.PhaseRevoking:
			revoked++
		default:
			t.Fatalf("rotation %s: contain=%q phase=%s hold=%s", id, r.Contain, r.Phase, r.Hold)
		}
	}
	if revoked != 5 || contained != 15 {
		t.Fatalf("%d revoked at once and %d contained, want 5 and 15", revoked, contained)
	}
	bs, err := w.engine.Breaker(w.ctx)
	if err != nil || !bs.Open || len(bs.Contained) != 15 {
		t.Fatalf("breaker status %+v %v", bs, err)
	}
	// Exempt source: GitHub's partner program proves possession.
	exempt := newCrashWorld(t, true)
	exempt.fleet(7)
	exempt.engine.Close(time.Second)
	exempt.restart("") // the default breaker exempts nothing: configure it
	exempt.engines[len(exempt.engines)-1].Close(time.Millisecond)
	e, err := rotator.New(rotator.Options{Store: exempt.store, Keys: append([]*rotator.Key{exempt.key}, exempt.extra...), Clock: exempt.clock,
		Inbound: exempt.store, State: exempt.store, Breaker: rotator.BreakerPolicy{Exempt: []string{"github-partner"}}})
	if err != nil {
		t.Fatal(err)
	}
	exempt.engine = e
	t.Cleanup(func() { e.Close(time.Second) })
	for i := 1; i <= 7; i++ {
		res := exempt.reportCurrent(fmt.Sprintf("key-%d", i), fmt.Sprintf("g%d", i), "github-partner")
		if r, _ := exempt.store.GetRotation(exempt.ctx, res.RotationID); r.Contain != "" {
			t.Fatalf("an exempt source's emergency was contained (%s)", r.Contain)
		}
	}

	for range 20 {
		w.engine.RunOnce(w.ctx)
		w.clock.Advance(time.Minute)
	}
	by := rotator.ApproveRequest{Approver: "oncall@example.com", Via: "cli"}
	res, err := w.engine.ReleaseBreaker(w.ctx, by, func(key string) bool { return key != "key-7" }, false)
	if err != nil || len(res) != 15 {
		t.Fatalf("release: %d results (%v), want 15", len(res), err)
	}
	for _, rel := range res {
		if (rel.Err == nil) == (rel.Key == "key-7") {
			t.Fatalf("release of %s (%s): %v", rel.RotationID, rel.Key, rel.Err)
		}
	}
	for range 5 {
		w.engine.RunOnce(w.ctx)
		w.clock.Advance(time.Minute)
	}
	res, err = w.engine.ReleaseBreaker(w.ctx, by, nil, true)
	if err != nil || len(res) != 1 || res[0].Key != "key-7" || res[0].Err != nil {
		t.Fatalf("second release: %+v (%v)", res, err)
	}
	for range 40 {
		w.engine.RunOnce(w.ctx)
		w.clock.Advance(time.Minute)
	}
	for _, id := range ids {
		if r, _ := w.store.GetRotation(w.ctx, id); r.Phase != rotator.PhaseDone {
			t.Fatalf("rotation %s ended %s after the release", id, r.Phase)
		}
	}
	w.engine.Close(5 * time.Second)
	opened := 0
	w.notes[0].mu.Lock()
	for _, ev := range w.notes[0].evs {
		if ev.Kind == rotator.EventBreaker && strings.Contains(ev.Message, "breaker OPEN") {
			opened++
		}
	}
	w.notes[0].mu.Unlock()
	if opened != 1 {
		t.Fatalf("%d breaker-open notifications, want 1", opened)
	}
}

// A thousand signed reports of tokens that match nothing, with a notifier
// down meanwhile, and one real exposure in the middle: the noise becomes
// one digest notification and one audit event, and when the notifier comes
// back the emergency is delivered before the informational backlog.
func TestNoiseIsDigestedAndEmergenciesGoFirst(t *testing.T) {
	w := newCrashWorld(t, true)
	w.fleet(1)
	w.engine.Close(5 * time.Second)
	w.restart("")
	auditBefore, _ := w.store.Audit(w.ctx, rotator.AuditFilter{})
	w.notes[0].setDown(true)
	w.notes[0].mu.Lock()
	w.notes[0].evs = nil
	w.notes[0].mu.Unlock()
	// Informational events queue up first: a staged rotation of api.
	w.trigger(rotator.TriggerRequest{Trigger: rotator.TriggerManual, Mode: rotator.ModeStaged})()
	w.engine.RunOnce(w.ctx)
	var emergency string
	for i := range 1000 {
		if i == 500 {
			emergency = w.reportCurrent("key-1", "real", "generic").RotationID
		}
		fp := rotator.Fingerprint(fmt.Sprintf("tok_nothing_%d", i))
		if _, err := w.engine.ReportExposure(w.ctx, rotator.ExposureReport{ID: fmt.Sprint("noise-", i), Via: "generic", Source: "scanner", Fingerprint: fp}); err != nil {
			t.Fatal(err)
		}
	}
	for range 30 {
		w.engine.RunOnce(w.ctx)
		w.clock.Advance(time.Minute)
	}
	if r, _ := w.store.GetRotation(w.ctx, emergency); r.Phase != rotator.PhaseDone {
		t.Fatalf("the real emergency ended %s", r.Phase)
	}
	auditAfter, _ := w.store.Audit(w.ctx, rotator.AuditFilter{})
	noise := 0
	for _, ev := range auditAfter[len(auditBefore):] {
		if ev.RotationID == "" {
			noise++
		}
	}
	if noise > 2 {
		t.Fatalf("%d audit events for 1,000 unmatched reports, want a digest", noise)
	}
	w.notes[0].setDown(false)
	w.clock.Advance(10 * time.Minute) // past every retry's backoff
	w.engine.Close(10 * time.Second)
	w.notes[0].mu.Lock()
	defer w.notes[0].mu.Unlock()
	digests, firstInfo, firstCritical := 0, -1, -1
	for i, ev := range w.notes[0].evs {
		if ev.Kind == rotator.EventDigest {
			digests++
			if !strings.Contains(ev.Message, "1000 exposure report(s)") {
				t.Fatalf("digest: %s", ev.Message)
			}
		}
		if ev.Severity == rotator.SeverityCritical && firstCritical < 0 {
			firstCritical = i
		}
		if ev.Severity == rotator.SeverityInfo && firstInfo < 0 {
			firstInfo = i
		}
	}
	if digests != 1 {
		t.Fatalf("%d digest notifications for one source's noise, want 1", digests)
	}
	if firstCritical < 0 || firstInfo >= 0 && firstInfo < firstCritical {
		t.Fatalf("an informational event (index %d) went out before the emergency (index %d)", firstInfo, firstCritical)
	}
}
