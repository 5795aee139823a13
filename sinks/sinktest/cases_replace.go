package sinktest

import (
	"github.com/rekeyhq/rekey/rotator"
)

// replacer is the sink's Replace, when it has one.
func (s sink) replace(t rotator.Target, d rotator.Delivery) (bool, error) {
	r, ok := s.s.(rotator.Replacer)
	if !ok {
		return false, nil
	}
	err := r.Replace(s.c.ctx, t, d)
	s.c.noSecret("Replace", err)
	return true, err
}

// testReplace walks an emergency delivery after a staged rotation: Replace
// makes the new value current at once (consumers never read anything
// else afterwards), nothing is pending, and the old value is no longer
// kept as rekey's previous value — a store whose own history labels it
// (Secrets Manager's AWSPREVIOUS) may still name it. A replay writes
// nothing, and a staged rotation after it works as usual. Replace into a
// missing target is a first delivery.
func testReplace(c *env) {
	s := c.sink(Options{})
	if _, ok := s.s.(rotator.Replacer); !ok {
		c.t.Skip("the sink has no Replace (emergencies stage, promote and clean up)")
	}
	g1, g2, g3, g4 := c.gen(1), c.gen(2), c.gen(3), c.gen(4)
	tgt := c.deliverFirst(s, g1)
	d2 := c.delivery(g2, g1)
	c.must("Stage", s.stage(tgt, d2))
	c.must("Promote", s.promote(tgt, d2))
	c.must("Cleanup", s.cleanup(tgt, d2))

	d3 := c.delivery(g3, g2)
	_, err := s.replace(tgt, d3)
	c.must("Replace", err)
	c.wantCurrent(tgt, g3)
	st, err := s.inspect(tgt)
	c.must("Inspect", err)
	if !st.Exists || !st.Managed || st.Current != g3.fp() || st.Pending != "" || (st.Previous != "" && st.Previous != g2.fp()) {
		c.t.Fatalf("Inspect after Replace = %+v, want generation 3 current, nothing pending, no previous but the replaced one", shortState(st))
	}
	m := c.mark(tgt)
	_, err = s.replace(tgt, d3)
	c.must("Replace replay", err)
	c.unchanged("Replace replay", tgt, m)
	c.wantCurrent(tgt, g3)

	d4 := c.delivery(g4, g3)
	c.must("Stage after Replace", s.stage(tgt, d4))
	c.wantCurrent(tgt, g3)
	c.must("Promote after Replace", s.promote(tgt, d4))
	c.wantCurrent(tgt, g4)
	c.must("Cleanup after Replace", s.cleanup(tgt, d4))
	c.wantState(s, tgt, g4, gen{}, gen{})

	fresh := c.h.NewTarget(c.t)
	_, err = s.replace(fresh, c.delivery(g1, gen{}))
	c.must("Replace into a missing target", err)
	c.wantCurrent(fresh, g1)
	c.wantState(s, fresh, g1, gen{}, gen{})
}
