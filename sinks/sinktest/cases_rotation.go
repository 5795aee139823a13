package sinktest

import (
	"errors"

	"github.com/rekeyhq/rekey/rotator"
)

// testInspectMissing: a target that does not exist is reported as such,
// without an error.
func testInspectMissing(c *env) {
	s := c.sink(Options{})
	tgt := c.h.NewTarget(c.t)
	st, err := s.inspect(tgt)
	c.must("Inspect", err)
	if st != (rotator.SinkState{}) {
		c.t.Fatalf("Inspect of a missing target = %+v, want the zero SinkState", shortState(st))
	}
}

// testFirstDelivery: staging into a missing target writes the value as
// current, marked managed; a replay writes nothing.
func testFirstDelivery(c *env) {
	s := c.sink(Options{})
	g1 := c.gen(1)
	tgt := c.h.NewTarget(c.t)
	d := c.delivery(g1, gen{})
	c.must("Stage", s.stage(tgt, d))
	c.wantCurrent(tgt, g1)
	c.wantState(s, tgt, g1, gen{}, gen{})

	m := c.mark(tgt)
	c.must("Stage replay", s.stage(tgt, d))
	c.unchanged("Stage replay", tgt, m)
	// Promote and Cleanup of a first delivery have nothing to do.
	c.must("Promote", s.promote(tgt, d))
	c.must("Cleanup", s.cleanup(tgt, d))
	c.unchanged("Promote and Cleanup of a first delivery", tgt, m)
	c.wantCurrent(tgt, g1)
	c.wantState(s, tgt, g1, gen{}, gen{})
}

// testStagePromoteCleanup walks one staged rotation, checking the reader and
// Inspect after every step and replaying each step, while a concurrent
// consumer reads the value throughout.
func testStagePromoteCleanup(c *env) {
	s := c.sink(Options{})
	g1, g2 := c.gen(1), c.gen(2)
	tgt := c.deliverFirst(s, g1)
	d := c.delivery(g2, g1)

	w := c.watch(tgt, g1)
	defer w.stop()

	c.must("Stage", s.stage(tgt, d))
	c.wantCurrent(tgt, g1)
	c.wantState(s, tgt, g1, g2, gen{})
	m := c.mark(tgt)
	c.must("Stage replay", s.stage(tgt, d))
	c.unchanged("Stage replay", tgt, m)
	c.wantState(s, tgt, g1, g2, gen{})

	w.allow(g1, g2)
	c.must("Promote", s.promote(tgt, d))
	w.allow(g2)
	c.wantCurrent(tgt, g2)
	c.wantState(s, tgt, g2, gen{}, g1)
	m = c.mark(tgt)
	c.must("Promote replay", s.promote(tgt, d))
	c.unchanged("Promote replay", tgt, m)
	c.must("Stage replay after Promote", s.stage(tgt, d))
	c.unchanged("Stage replay after Promote", tgt, m)
	c.wantState(s, tgt, g2, gen{}, g1)

	c.must("Cleanup", s.cleanup(tgt, d))
	c.wantCurrent(tgt, g2)
	c.wantState(s, tgt, g2, gen{}, gen{})
	m = c.mark(tgt)
	c.must("Cleanup replay", s.cleanup(tgt, d))
	c.unchanged("Cleanup replay", tgt, m)
	c.wantCurrent(tgt, g2)
}

// testReplayWholeRotation: after a finished rotation, a resumed engine that
// repeats every step from the start changes nothing, and the next rotation
// works from there.
func testReplayWholeRotation(c *env) {
	s := c.sink(Options{})
	g1, g2, g3 := c.gen(1), c.gen(2), c.gen(3)
	tgt := c.deliverFirst(s, g1)
	d := c.delivery(g2, g1)
	c.must("Stage", s.stage(tgt, d))
	c.must("Promote", s.promote(tgt, d))
	c.must("Cleanup", s.cleanup(tgt, d))

	m := c.mark(tgt)
	for range 2 {
		c.must("Stage replay", s.stage(tgt, d))
		c.must("Promote replay", s.promote(tgt, d))
		c.must("Cleanup replay", s.cleanup(tgt, d))
	}
	c.unchanged("replaying a finished rotation", tgt, m)
	c.wantCurrent(tgt, g2)
	c.wantState(s, tgt, g2, gen{}, gen{})

	// A fresh sink (a restarted daemon) sees the same state.
	s2 := c.sink(Options{})
	c.wantState(s2, tgt, g2, gen{}, gen{})
	d3 := c.delivery(g3, g2)
	c.must("Stage g3", s2.stage(tgt, d3))
	c.must("Promote g3", s2.promote(tgt, d3))
	c.must("Cleanup g3", s2.cleanup(tgt, d3))
	c.wantCurrent(tgt, g3)
	c.wantState(s2, tgt, g3, gen{}, gen{})
}

// testRestage: a pending value left by an abandoned rotation is replaced by
// the next Stage, and Cleanup drops a pending value that is not its own.
func testRestage(c *env) {
	s := c.sink(Options{})
	g1, g2, g3, g4 := c.gen(1), c.gen(2), c.gen(3), c.gen(4)
	tgt := c.deliverFirst(s, g1)
	c.must("Stage g2", s.stage(tgt, c.delivery(g2, g1)))
	d3 := c.delivery(g3, g1)
	c.must("Stage g3", s.stage(tgt, d3))
	c.wantCurrent(tgt, g1)
	c.wantState(s, tgt, g1, g3, gen{})
	c.must("Promote g3", s.promote(tgt, d3))
	c.wantCurrent(tgt, g3)
	c.wantState(s, tgt, g3, gen{}, g1)

	// A stray pending value (g4) appears; Cleanup of g3 drops it with g1.
	c.must("Stage g4", s.stage(tgt, c.delivery(g4, g3)))
	c.wantState(s, tgt, g3, g4, g1)
	c.must("Cleanup g3", s.cleanup(tgt, d3))
	c.wantCurrent(tgt, g3)
	c.wantState(s, tgt, g3, gen{}, gen{})
}

// testPromoteUnstaged: promoting a value that was never staged fails with
// rotator.ErrNotFound, names the path and changes nothing.
func testPromoteUnstaged(c *env) {
	s := c.sink(Options{})
	g1, g2 := c.gen(1), c.gen(2)
	tgt := c.deliverFirst(s, g1)
	m := c.mark(tgt)
	err := s.promote(tgt, c.delivery(g2, g1))
	c.wantErr("Promote of an unstaged value", err, rotator.ErrNotFound, tgt)
	c.unchanged("a failed Promote", tgt, m)
	c.wantCurrent(tgt, g1)
	c.wantState(s, tgt, g1, gen{}, gen{})
}

// testReadPending: the staged secret can be read back by fingerprint; an
// unknown fingerprint is rotator.ErrNotFound.
func testReadPending(c *env) {
	s := c.sink(Options{})
	pr, ok := s.s.(rotator.PendingReader)
	if !ok {
		c.t.Skip("sink does not implement rotator.PendingReader")
	}
	g1, g2 := c.gen(1), c.gen(2)
	tgt := c.h.NewTarget(c.t)
	read := func(g gen) (rotator.Secret, error) {
		v, err := pr.ReadPending(c.ctx, tgt, g.fp())
		c.noSecret("ReadPending", err)
		return v, err
	}
	if _, err := read(g1); !errors.Is(err, rotator.ErrNotFound) {
		c.t.Fatalf("ReadPending on a missing target: %v, want rotator.ErrNotFound", err)
	}
	// First delivery: the staged secret went straight to current.
	c.must("Stage g1", s.stage(tgt, c.delivery(g1, gen{})))
	got, err := read(g1)
	c.must("ReadPending of a first delivery", err)
	if got.Reveal() != g1.value {
		c.t.Fatalf("ReadPending returned %s, want %s", short(got.Reveal()), short(g1.value))
	}
	d := c.delivery(g2, g1)
	c.must("Stage g2", s.stage(tgt, d))
	m := c.mark(tgt)
	got, err = read(g2)
	c.must("ReadPending", err)
	if got.Reveal() != g2.value {
		c.t.Fatalf("ReadPending returned %s, want %s", short(got.Reveal()), short(g2.value))
	}
	c.unchanged("ReadPending", tgt, m)
	_, err = read(c.gen(3))
	c.wantErr("ReadPending of an unknown fingerprint", err, rotator.ErrNotFound, tgt)
	c.must("Promote", s.promote(tgt, d))
	c.must("Cleanup", s.cleanup(tgt, d))
	if _, err := read(g1); !errors.Is(err, rotator.ErrNotFound) {
		c.t.Fatalf("ReadPending of a cleaned-up value: %v, want rotator.ErrNotFound", err)
	}
}
