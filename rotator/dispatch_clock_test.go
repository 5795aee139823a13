package rotator_test

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/store/sqlite"
	"github.com/rekeyhq/rekey/store/sqlstore"
)

// skewed is the clock of a host whose clock is off by a fixed amount.
type skewed time.Duration

func (s skewed) Now() time.Time { return time.Now().Add(time.Duration(s)) }

// gated blocks its delivery of one event until released, and records what
// it delivered.
type gated struct {
	mu      sync.Mutex
	got     []string
	blockID string
	entered chan struct{}
	release chan struct{}
}

func (g *gated) Notify(ctx context.Context, ev rotator.Event) error {
	if ev.ID == g.blockID {
		close(g.entered)
		select {
		case <-g.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.got = append(g.got, ev.ID)
	return nil
}

func (g *gated) delivered() []string { g.mu.Lock(); defer g.mu.Unlock(); return slices.Clone(g.got) }

type skewEnv struct {
	t     *testing.T
	st    *sqlstore.Store
	key   *rotator.Key
	queue *rotator.Engine
}

func newSkewEnv(t *testing.T) *skewEnv {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "rekey.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &skewEnv{t: t, st: st, key: &rotator.Key{Name: "api", Issuer: newIssuer(), IssuerName: "fake"}}
	e.queue = e.engine(0, nil, true)
	return e
}

// engine is a daemon on a host whose clock is off by skew, delivering
// (unless enqueueOnly) the shared outbox to n, judging claims and retries
// by the database's clock.
func (e *skewEnv) engine(skew time.Duration, n rotator.Notifier, enqueueOnly bool) *rotator.Engine {
	if n == nil {
		n = &flaky{}
	}
	eng, err := rotator.New(rotator.Options{Store: e.st, Keys: []*rotator.Key{e.key}, Clock: skewed(skew), Outbox: e.st,
		OutboxDatabaseClock: true, Notifiers: map[string]rotator.Notifier{"n": n}, EnqueueOnly: enqueueOnly})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { eng.Close(0) })
	return eng
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20s", what)
		}
	}
}

// A retry scheduled by a daemon whose clock runs an hour ahead is due on
// the database's clock: another daemon, whose clock runs an hour behind,
// sends it within seconds. Judged by each host's clock it waited two hours.
func TestOutboxRetryIsDueByTheDatabaseClock(t *testing.T) {
	e := newSkewEnv(t)
	note := &flaky{failID: "ev-1"}
	ahead := e.engine(time.Hour, note, false)
	e.queue.Notify(e.key, rotator.Event{ID: "ev-1", Kind: rotator.EventRetrying, Key: "api", Message: "ev-1"})
	waitFor(t, "the first attempt fails", func() bool { note.mu.Lock(); defer note.mu.Unlock(); return note.failed })
	ahead.Close(0)
	e.engine(-time.Hour, note, false)
	waitFor(t, "the retry, sent by the daemon behind", func() bool { return slices.Equal(note.delivered(), []string{"ev-1"}) })
}

// A claim taken by a daemon whose clock runs an hour behind holds for a
// daemon whose clock runs an hour ahead: while the first is still sending
// a notification, the second sends the others but not that one. Judged by
// each host's clock, the claim had expired an hour before it was taken.
func TestOutboxClaimHoldsAcrossSkewedClocks(t *testing.T) {
	e := newSkewEnv(t)
	slow := &gated{blockID: "ev-2", entered: make(chan struct{}), release: make(chan struct{})}
	e.queue.Notify(e.key, rotator.Event{ID: "ev-2", Kind: rotator.EventRetrying, Key: "api", Message: "ev-2"})
	e.engine(-time.Hour, slow, false)
	select {
	case <-slow.entered:
	case <-time.After(20 * time.Second):
		t.Fatal("the daemon behind never started sending ev-2")
	}
	// A critical event goes in its own lane, ahead of ev-2's: the daemon
	// ahead sends it, and reads ev-2 in the same pass if it takes the
	// claim on ev-2 for expired.
	e.queue.Notify(e.key, rotator.Event{ID: "ev-3", Kind: rotator.EventFailed, Severity: rotator.SeverityCritical, Key: "api", Message: "ev-3"})
	other := &gated{}
	ahead := e.engine(time.Hour, other, false)
	waitFor(t, "ev-3 sent by the daemon ahead", func() bool { return slices.Contains(other.delivered(), "ev-3") })
	ahead.Close(0) // ends its pass: whatever it took is in delivered
	close(slow.release)
	if got := other.delivered(); !slices.Equal(got, []string{"ev-3"}) {
		t.Fatalf("the daemon ahead sent %v while the daemon behind held ev-2's claim", got)
	}
	waitFor(t, "ev-2 sent once, by the daemon behind", func() bool { return slices.Equal(slow.delivered(), []string{"ev-2"}) })
}

// A clean stop lets a notification being sent finish (within the grace)
// and records it delivered. Before, the stop saw nothing due — the item
// was claimed, not due — cancelled the call, and the item waited for its
// claim to expire to be sent again.
func TestCleanStopFinishesTheNotificationBeingSent(t *testing.T) {
	e := newSkewEnv(t)
	slow := &slowCall{entered: make(chan struct{})}
	eng := e.engine(0, slow, false)
	e.queue.Notify(e.key, rotator.Event{ID: "ev-1", Kind: rotator.EventRetrying, Key: "api", Message: "ev-1"})
	select {
	case <-slow.entered:
	case <-time.After(20 * time.Second):
		t.Fatal("the notification was never sent")
	}
	eng.Close(10 * time.Second)
	if !slow.finished() {
		t.Fatal("the stop cut the call short")
	}
	due, err := e.st.DueOutbox(context.Background(), "n", time.Now().Add(time.Hour), 10)
	if err != nil || len(due) != 0 {
		t.Fatalf("after a clean stop, still to send: %v (%v)", due, err)
	}
}

// slowCall takes 300ms per delivery, and gives up when its context ends.
type slowCall struct {
	once    sync.Once
	entered chan struct{}
	mu      sync.Mutex
	done    bool
}

func (s *slowCall) Notify(ctx context.Context, _ rotator.Event) error {
	s.once.Do(func() { close(s.entered) })
	select {
	case <-time.After(300 * time.Millisecond):
	case <-ctx.Done():
		return ctx.Err()
	}
	s.mu.Lock()
	s.done = true
	s.mu.Unlock()
	return nil
}

func (s *slowCall) finished() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.done }
