package sinktest

import (
	"context"
	"sync"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// testConcurrentWriter: another writer changes the target between the
// sink's read and its write, at every step. The sink must notice (check-and-
// set, or a compare before the write), re-read and redo its step on the
// fresh state: the foreign change survives and the step still completes.
func testConcurrentWriter(c *env) {
	if c.h.ForeignWrite == nil || c.h.ForeignRead == nil || c.h.Interleave == nil {
		c.t.Skip("harness has no ForeignWrite/ForeignRead/Interleave")
	}
	s := c.sink(Options{})
	g1, g2, g3 := c.gen(1), c.gen(2), c.gen(3)
	tgt := c.deliverFirst(s, g1)

	n := 0
	step := func(name string, call func() error) {
		c.t.Helper()
		fired := false
		c.h.Interleave(s.s, func() {
			fired = true
			n++
			if err := c.h.ForeignWrite(c.ctx, tgt, n); err != nil {
				c.t.Errorf("foreign write during %s: %v", name, err)
			}
		})
		c.must(name, call())
		if !fired {
			c.t.Fatalf("%s never reached the Interleave hook (between its read and its write)", name)
		}
		got, err := c.h.ForeignRead(c.ctx, tgt)
		c.must("ForeignRead", err)
		if got != n {
			c.t.Fatalf("%s clobbered a concurrent write: foreign field is %d, want %d", name, got, n)
		}
	}
	state := func() rotator.SinkState {
		c.t.Helper()
		st, err := s.inspect(tgt)
		c.must("Inspect", err)
		return st
	}

	w := c.watch(tgt, g1)
	defer w.stop()
	d := c.delivery(g2, g1)
	step("Stage", func() error { return s.stage(tgt, d) })
	c.wantCurrent(tgt, g1)
	// A foreign write may shift what a backend keeps as previous (Secrets
	// Manager moves AWSPREVIOUS on every new current version), so only
	// current and pending are checked here.
	if st := state(); st.Current != g1.fp() || st.Pending != g2.fp() {
		c.t.Fatalf("after Stage with a concurrent write: %+v, want current g1 and pending g2", shortState(st))
	}
	w.allow(g1, g2)
	step("Promote", func() error { return s.promote(tgt, d) })
	w.allow(g2)
	c.wantCurrent(tgt, g2)
	if st := state(); st.Current != g2.fp() || st.Pending != "" {
		c.t.Fatalf("after Promote with a concurrent write: %+v, want current g2, no pending", shortState(st))
	}
	step("Cleanup", func() error { return s.cleanup(tgt, d) })
	c.wantCurrent(tgt, g2)
	c.wantState(s, tgt, g2, gen{}, gen{})

	d3 := c.delivery(g3, g2)
	w.allow(g2, g3)
	c.must("Stage g3", s.stage(tgt, d3))
	c.must("Promote g3", s.promote(tgt, d3))
	step("Rollback", func() error { return s.rollback(tgt, d3) })
	w.allow(g2)
	c.wantCurrent(tgt, g2)
	if st := state(); st.Current != g2.fp() || st.Pending != "" || st.Previous == g3.fp() {
		c.t.Fatalf("after Rollback with a concurrent write: %+v, want current g2 and g3 gone", shortState(st))
	}
}

// testOutage: while the backend is unreachable every call fails within its
// deadline with a retryable error (the engine backs off and retries); once
// it is back, the same call succeeds.
func testOutage(c *env) {
	if c.h.Outage == nil {
		c.t.Skip("harness has no Outage")
	}
	s := c.sink(Options{})
	g1, g2 := c.gen(1), c.gen(2)
	tgt := c.deliverFirst(s, g1)
	d := c.delivery(g2, g1)

	during := func(name string, call func(ctx context.Context) error) {
		c.t.Helper()
		var once sync.Once
		restoreFn := c.h.Outage(c.t)
		restore := func() { once.Do(restoreFn) }
		defer restore()
		ctx, cancel := context.WithTimeout(c.ctx, c.h.OutageTimeout)
		start := time.Now()
		err := call(ctx)
		took := time.Since(start)
		cancel()
		restore()
		c.noSecret(name, err)
		switch {
		case err == nil:
			c.t.Fatalf("%s during an outage: no error", name)
		case rotator.IsPermanent(err):
			c.t.Fatalf("%s during an outage: %q is permanent, want retryable", name, err)
		case took > c.h.OutageTimeout+10*time.Second: // generous: loaded CI machines are slow
			c.t.Fatalf("%s during an outage took %s, past its %s deadline", name, took, c.h.OutageTimeout)
		}
		c.t.Logf("%s during an outage: %v (after %s)", name, err, took.Round(time.Millisecond))
	}

	during("Stage", func(ctx context.Context) error { return s.s.Stage(ctx, tgt, d) })
	c.must("Stage after the outage", s.stage(tgt, d))
	c.wantCurrent(tgt, g1)
	c.wantState(s, tgt, g1, g2, gen{})

	during("Inspect", func(ctx context.Context) error { _, err := s.s.Inspect(ctx, tgt); return err })
	during("Promote", func(ctx context.Context) error { return s.s.Promote(ctx, tgt, bare(d)) })
	c.must("Promote after the outage", s.promote(tgt, d))
	c.wantCurrent(tgt, g2)
	c.wantState(s, tgt, g2, gen{}, g1)

	during("Cleanup", func(ctx context.Context) error { return s.s.Cleanup(ctx, tgt, bare(d)) })
	c.must("Cleanup after the outage", s.cleanup(tgt, d))
	c.wantCurrent(tgt, g2)
	c.wantState(s, tgt, g2, gen{}, gen{})
}
