package rotator

import (
	"testing"
	"time"
)

// A gate with a reason of its own (a later drain gate, say) replaces the
// reason the rotation's state gives; since restarts when the reason
// changes and is kept while it stays.
func TestWaitingHintReplacesReason(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	k := &Key{Drain: DrainPolicy{SourceName: "prom", QuietPeriod: time.Minute}}
	r := &Rotation{Phase: PhaseDraining, NextAttemptAt: now.Add(time.Second), Drain: DrainState{StartedAt: now.Add(-time.Hour), QuietSince: now.Add(-10 * time.Second)}}
	w := waitingOf(k, r, now, nil, nil)
	if w.Reason != WaitQuietPeriod || !w.Since.Equal(r.Drain.StartedAt) || w.Progress.Done != 10 {
		t.Fatalf("from state: %+v", w)
	}
	h := &waitHint{reason: "consumers", detail: "2 of 3 consumers attested generation 2", progress: &Progress{Done: 2, Of: 3, Unit: "consumers"}}
	w2 := waitingOf(k, r, now, w, h)
	if w2.Reason != "consumers" || w2.Detail != h.detail || w2.Progress.Of != 3 || !w2.Since.Equal(now) {
		t.Fatalf("hinted: %+v", w2)
	}
	w3 := waitingOf(k, r, now.Add(time.Minute), w2, h)
	if !w3.Since.Equal(now) {
		t.Fatalf("since moved while the reason stayed: %+v", w3)
	}
	r.Phase = PhaseVerifying
	if w4 := waitingOf(k, r, now, nil, h); w4 == nil || w4.Reason != "consumers" {
		t.Fatalf("a hinted wait in a phase the state says nothing of: %+v", w4)
	}
	if w5 := waitingOf(k, r, now, w3, nil); w5 != nil {
		t.Fatalf("a running rotation waits: %+v", w5)
	}
}
