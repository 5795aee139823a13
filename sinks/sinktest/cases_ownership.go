package sinktest

import (
	"github.com/rekeyhq/rekey/rotator"
)

// createUnmanaged makes a target holding g without the managed-by marker.
func (c *env) createUnmanaged(g gen) rotator.Target {
	c.t.Helper()
	tgt := c.h.NewTarget(c.t)
	c.must("CreateUnmanaged", c.h.CreateUnmanaged(c.ctx, tgt, g.value))
	c.wantCurrent(tgt, g)
	return tgt
}

// wantNotManaged checks a refusal to touch a target rekey does not own.
func (c *env) wantNotManaged(what string, err error, tgt rotator.Target) {
	c.t.Helper()
	c.wantErr(what, err, rotator.ErrNotManaged, tgt)
	if !rotator.IsPermanent(err) || rotator.ReasonOf(err) != rotator.ReasonNotManaged {
		c.t.Fatalf("%s: %q is not permanent with reason %q (got permanent=%v reason=%q)",
			what, err, rotator.ReasonNotManaged, rotator.IsPermanent(err), rotator.ReasonOf(err))
	}
}

// testNotManaged: every writing call refuses a target that exists without
// the marker, names its path, and writes nothing; Inspect reports it.
func testNotManaged(c *env) {
	s := c.sink(Options{})
	g0, g1 := c.gen(0), c.gen(1)
	tgt := c.createUnmanaged(g0)
	m := c.mark(tgt)

	st, err := s.inspect(tgt)
	c.must("Inspect", err)
	if want := (rotator.SinkState{Exists: true, Current: g0.fp()}); st != want {
		c.t.Fatalf("Inspect of an unmanaged target = %+v, want %+v", shortState(st), shortState(want))
	}
	d := c.delivery(g1, g0)
	c.wantNotManaged("Stage", s.stage(tgt, d), tgt)
	c.wantNotManaged("Promote", s.promote(tgt, d), tgt)
	c.wantNotManaged("Cleanup", s.cleanup(tgt, d), tgt)
	c.wantNotManaged("Rollback", s.rollback(tgt, d), tgt)
	if r, ok := s.s.(rotator.Remover); ok {
		err := r.Remove(c.ctx, tgt)
		c.noSecret("Remove", err)
		c.wantNotManaged("Remove", err, tgt)
	}
	c.unchanged("refused calls", tgt, m)
	c.wantCurrent(tgt, g0)
}

// testAdopt: with adopt the sink takes the target over: the existing value
// is the old current, rotation proceeds, and the target ends up marked so
// that a sink without adopt manages it too.
func testAdopt(c *env) {
	s := c.sink(Options{Adopt: true})
	g0, g1, g2 := c.gen(0), c.gen(1), c.gen(2)
	tgt := c.createUnmanaged(g0)

	d := c.delivery(g1, g0)
	w := c.watch(tgt, g0)
	defer w.stop()
	c.must("Stage", s.stage(tgt, d))
	c.wantCurrent(tgt, g0)
	c.wantState(s, tgt, g0, g1, gen{})
	w.allow(g0, g1)
	c.must("Promote", s.promote(tgt, d))
	w.allow(g1)
	c.must("Cleanup", s.cleanup(tgt, d))
	w.stop()
	c.wantCurrent(tgt, g1)
	c.wantState(s, tgt, g1, gen{}, gen{})

	plain := c.sink(Options{})
	c.wantState(plain, tgt, g1, gen{}, gen{})
	d2 := c.delivery(g2, g1)
	c.must("Stage without adopt after adoption", plain.stage(tgt, d2))
	c.must("Promote without adopt after adoption", plain.promote(tgt, d2))
	c.wantCurrent(tgt, g2)
}

// testRemove: decommission deletes the key's values; replays and a missing
// target are no-ops; an unmanaged target is refused.
func testRemove(c *env) {
	s := c.sink(Options{})
	r, ok := s.s.(rotator.Remover)
	if !ok {
		c.t.Skip("sink does not implement rotator.Remover")
	}
	remove := func(tgt rotator.Target) error {
		err := r.Remove(c.ctx, tgt)
		c.noSecret("Remove", err)
		return err
	}
	g1, g2 := c.gen(1), c.gen(2)
	tgt := c.deliverFirst(s, g1)
	c.must("Stage", s.stage(tgt, c.delivery(g2, g1)))
	c.must("Remove", remove(tgt))
	_, found, err := c.h.ReadCurrent(c.ctx, tgt)
	c.must("independent read", err)
	if found {
		c.t.Fatalf("consumer still reads a current value at %s after Remove", tgt.Path)
	}
	st, err := s.inspect(tgt)
	c.must("Inspect", err)
	if st.Current != "" || st.Pending != "" || st.Previous != "" {
		c.t.Fatalf("Inspect after Remove = %+v, want no values", shortState(st))
	}
	c.must("Remove replay", remove(tgt))
	c.must("Remove of a missing target", remove(c.h.NewTarget(c.t)))
}
