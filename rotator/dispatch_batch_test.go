package rotator_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/store/sqlite"
)

// flaky fails the first delivery of one event id with a retryable error.
type flaky struct {
	mu     sync.Mutex
	failID string
	failed bool
	got    []string
}

func (f *flaky) Notify(_ context.Context, ev rotator.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ev.ID == f.failID && !f.failed {
		f.failed = true
		return errors.New("notifier briefly unavailable")
	}
	f.got = append(f.got, ev.ID)
	return nil
}

func (f *flaky) delivered() []string { f.mu.Lock(); defer f.mu.Unlock(); return slices.Clone(f.got) }

// TestBatchDeliveryKeepsOrderAndReleases: the durable outbox delivers a
// batch claimed in one transaction. A retryable failure in the middle stops
// the queue (what follows never overtakes it), and what the batch claimed
// after it is due again at once — not when the claim would have expired —
// so that everything goes out, in order, as soon as the failed one does.
func TestBatchDeliveryKeepsOrderAndReleases(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "rekey.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clock := newClock()
	note := &flaky{failID: "ev-2"}
	key := &rotator.Key{Name: "api", Issuer: newIssuer(), IssuerName: "fake"}
	// Enqueue-only first, so that the three events are due together.
	queue, err := rotator.New(rotator.Options{Store: st, Keys: []*rotator.Key{key}, Clock: clock, Outbox: st,
		Notifiers: map[string]rotator.Notifier{"n": note}, EnqueueOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"ev-1", "ev-2", "ev-3"} {
		queue.Notify(key, rotator.Event{ID: id, Kind: rotator.EventRetrying, Key: "api", Message: id})
	}
	queue.Close(0)
	e, err := rotator.New(rotator.Options{Store: st, Keys: []*rotator.Key{key}, Clock: clock, Outbox: st,
		Notifiers: map[string]rotator.Notifier{"n": note}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(time.Second)
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: delivered %v", what, note.delivered())
			}
		}
	}
	waitUntil("first event and the failure", func() bool {
		note.mu.Lock()
		defer note.mu.Unlock()
		return note.failed && len(note.got) == 1
	})
	if got := note.delivered(); !slices.Equal(got, []string{"ev-1"}) {
		t.Fatalf("delivered %v before the retry, want only ev-1 (ev-3 must wait for ev-2)", got)
	}
	// Past the retry's backoff (at most 1.2 s), far from the 2-minute claim.
	clock.Advance(2 * time.Second)
	waitUntil("the rest, in order", func() bool { return len(note.delivered()) == 3 })
	if got := note.delivered(); !slices.Equal(got, []string{"ev-1", "ev-2", "ev-3"}) {
		t.Fatalf("delivered %v, want ev-1, ev-2, ev-3", got)
	}
}
