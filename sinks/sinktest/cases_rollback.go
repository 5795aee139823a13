package sinktest

import "github.com/rekeyhq/rekey/rotator"

// testRollbackAfterStage: the old value stays current, the staged one goes.
func testRollbackAfterStage(c *env) {
	s := c.sink(Options{})
	g1, g2 := c.gen(1), c.gen(2)
	tgt := c.deliverFirst(s, g1)
	d := c.delivery(g2, g1)
	c.must("Stage", s.stage(tgt, d))

	w := c.watch(tgt, g1)
	defer w.stop()
	c.must("Rollback", s.rollback(tgt, d))
	c.wantCurrent(tgt, g1)
	c.wantState(s, tgt, g1, gen{}, gen{})
	m := c.mark(tgt)
	c.must("Rollback replay", s.rollback(tgt, d))
	c.unchanged("Rollback replay", tgt, m)
	c.wantCurrent(tgt, g1)
}

// testRollbackAfterPromote: the old value is current again and the new one
// is gone, without a moment where consumers read nothing.
func testRollbackAfterPromote(c *env) {
	s := c.sink(Options{})
	g1, g2 := c.gen(1), c.gen(2)
	tgt := c.deliverFirst(s, g1)
	d := c.delivery(g2, g1)
	c.must("Stage", s.stage(tgt, d))
	c.must("Promote", s.promote(tgt, d))
	c.wantCurrent(tgt, g2)

	w := c.watch(tgt, g1, g2)
	defer w.stop()
	c.must("Rollback", s.rollback(tgt, d))
	w.allow(g1)
	c.wantCurrent(tgt, g1)
	c.wantState(s, tgt, g1, gen{}, gen{})
	m := c.mark(tgt)
	c.must("Rollback replay", s.rollback(tgt, d))
	c.unchanged("Rollback replay", tgt, m)
	c.wantCurrent(tgt, g1)
	w.stop()

	// The next rotation starts cleanly from the restored value.
	g3 := c.gen(3)
	d3 := c.delivery(g3, g1)
	c.must("Stage g3", s.stage(tgt, d3))
	c.must("Promote g3", s.promote(tgt, d3))
	c.must("Cleanup g3", s.cleanup(tgt, d3))
	c.wantCurrent(tgt, g3)
	c.wantState(s, tgt, g3, gen{}, gen{})
}

// testRollbackAfterCleanup: once the old value is gone a rollback cannot
// restore it; it must fail and leave the new value readable.
func testRollbackAfterCleanup(c *env) {
	s := c.sink(Options{})
	g1, g2 := c.gen(1), c.gen(2)
	tgt := c.deliverFirst(s, g1)
	d := c.delivery(g2, g1)
	c.must("Stage", s.stage(tgt, d))
	c.must("Promote", s.promote(tgt, d))
	c.must("Cleanup", s.cleanup(tgt, d))
	m := c.mark(tgt)
	err := s.rollback(tgt, d)
	c.wantErr("Rollback after Cleanup", err, rotator.ErrNotFound, tgt)
	c.unchanged("a refused Rollback", tgt, m)
	c.wantCurrent(tgt, g2)
}

// testRollbackFirstDelivery: undoing a first delivery would leave consumers
// without a current value, so the sink refuses (rotator.ErrBadState) and
// keeps the value.
func testRollbackFirstDelivery(c *env) {
	s := c.sink(Options{})
	g1 := c.gen(1)
	tgt := c.deliverFirst(s, g1)
	m := c.mark(tgt)
	err := s.rollback(tgt, c.delivery(g1, gen{}))
	c.wantErr("Rollback of a first delivery", err, rotator.ErrBadState, tgt)
	c.unchanged("a refused Rollback", tgt, m)
	c.wantCurrent(tgt, g1)
	if !rotator.IsPermanent(err) {
		c.t.Fatalf("Rollback of a first delivery: %v is retryable; retrying cannot help", err)
	}

	// Rolling back a delivery the target never saw is a no-op.
	c.must("Rollback of an unknown delivery", s.rollback(tgt, c.delivery(c.gen(2), g1)))
	c.unchanged("Rollback of an unknown delivery", tgt, m)
	c.wantCurrent(tgt, g1)
}
