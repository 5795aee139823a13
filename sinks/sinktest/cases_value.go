package sinktest

import (
	"errors"

	"github.com/rekeyhq/rekey/rotator"
)

// testReadValue: every slot's value can be read back by fingerprint — the
// previous one too, which a person's confirmation that they revoked it is
// probed with — without changing the target; a cleaned-up or unknown
// fingerprint is rotator.ErrNotFound.
func testReadValue(c *env) {
	s := c.sink(Options{})
	vr, ok := s.s.(rotator.ValueReader)
	if !ok {
		c.t.Skip("sink does not implement rotator.ValueReader")
	}
	g1, g2 := c.gen(1), c.gen(2)
	tgt := c.deliverFirst(s, g1)
	read := func(g gen) (rotator.Secret, error) {
		v, err := vr.ReadValue(c.ctx, tgt, g.fp())
		c.noSecret("ReadValue", err)
		return v, err
	}
	d := c.delivery(g2, g1)
	c.must("Stage g2", s.stage(tgt, d))
	c.must("Promote g2", s.promote(tgt, d))
	m := c.mark(tgt)
	for _, g := range []gen{g1, g2} {
		got, err := read(g)
		c.must("ReadValue", err)
		if got.Reveal() != g.value {
			c.t.Fatalf("ReadValue returned %s, want %s", short(got.Reveal()), short(g.value))
		}
	}
	c.unchanged("ReadValue", tgt, m)
	_, err := read(c.gen(3))
	c.wantErr("ReadValue of an unknown fingerprint", err, rotator.ErrNotFound, tgt)
	c.must("Cleanup", s.cleanup(tgt, d))
	if _, err := read(g1); !errors.Is(err, rotator.ErrNotFound) {
		c.t.Fatalf("ReadValue of a cleaned-up value: %v, want rotator.ErrNotFound", err)
	}
}
