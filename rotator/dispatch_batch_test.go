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
	"github.com/rekeyhq/rekey/store/sqlstore"
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

// slowNote is a notifier whose every call takes 6 s of the engine's clock.
// At each call it checks the batch's discipline in the store: the item's
// claim outlasts the call (it could run its whole timeout), and every item
// delivered before it is already marked — so that no other daemon can
// claim an item while a call sends it, or send one again that was sent.
type slowNote struct {
	st      *sqlstore.Store
	clock   *fakeClock
	call    time.Duration // the dispatcher's call timeout
	mu      sync.Mutex
	got     []string
	unfair  []string
	prevIDs []string
}

func (s *slowNote) Notify(ctx context.Context, ev rotator.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var until string
	if err := s.st.DB().QueryRowContext(ctx, `SELECT next_attempt_at FROM outbox WHERE id = ?`, "n/"+ev.ID).Scan(&until); err != nil {
		s.unfair = append(s.unfair, ev.ID+": "+err.Error())
	} else if end := sqlstore.TimeText(s.clock.Now().Add(s.call)); end > until {
		s.unfair = append(s.unfair, ev.ID+" sent at "+sqlstore.TimeText(s.clock.Now())+" could end at "+end+", after its claim ends at "+until)
	}
	for _, id := range s.prevIDs {
		var at string
		if err := s.st.DB().QueryRowContext(ctx, `SELECT delivered_at FROM outbox WHERE id = ?`, "n/"+id).Scan(&at); err != nil || at == "" {
			s.unfair = append(s.unfair, id+" was sent but not marked delivered when "+ev.ID+" went out")
		}
	}
	s.clock.Advance(6 * time.Second)
	s.got = append(s.got, ev.ID)
	s.prevIDs = append(s.prevIDs, ev.ID)
	return nil
}

func (s *slowNote) state() ([]string, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got), slices.Clone(s.unfair)
}

// TestBatchDeliveryStaysWithinItsClaim: a batch whose calls are slow
// relative to its claim (a 10 s call timeout, a 20 s claim, calls of 6 s)
// never starts a call that could outlast the item's claim, and marks each
// item delivered as soon as it is sent; what the claim could not cover is
// claimed afresh, and every item goes out once, in order.
func TestBatchDeliveryStaysWithinItsClaim(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "rekey.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clock := newClock()
	ttl := 10 * time.Second // call timeout 10 s (the TTL, at least 5 s), claim 20 s
	note := &slowNote{st: st, clock: clock, call: ttl}
	key := &rotator.Key{Name: "api", Issuer: newIssuer(), IssuerName: "fake"}
	queue, err := rotator.New(rotator.Options{Store: st, Keys: []*rotator.Key{key}, Clock: clock, Outbox: st,
		Notifiers: map[string]rotator.Notifier{"n": note}, EnqueueOnly: true, LeaseTTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ev-1", "ev-2", "ev-3", "ev-4", "ev-5"}
	for _, id := range want {
		queue.Notify(key, rotator.Event{ID: id, Kind: rotator.EventRetrying, Key: "api", Message: id})
	}
	queue.Close(0)
	e, err := rotator.New(rotator.Options{Store: st, Keys: []*rotator.Key{key}, Clock: clock, Outbox: st,
		Notifiers: map[string]rotator.Notifier{"n": note}, LeaseTTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(time.Second)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		got, _ := note.state()
		if len(got) >= len(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivered %v, want %v", got, want)
		}
	}
	got, unfair := note.state()
	for _, u := range unfair {
		t.Error(u)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v once each, in order", got, want)
	}
}
