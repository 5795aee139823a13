package slots

import (
	"errors"
	"testing"

	"github.com/rekeyhq/rekey/rotator"
)

// val is a slot value as the Vault sink keeps it: a bare string.
type val string

func (v val) Fingerprint() string {
	if v == "" {
		return ""
	}
	return rotator.Fingerprint(string(v))
}

func delivery(v, old val) rotator.Delivery {
	return rotator.Delivery{Fingerprint: v.Fingerprint(), OldFingerprint: old.Fingerprint()}
}

// transition is one of the four, applied with its delivery.
type transition func(Slots[val]) (Slots[val], bool, error)

func stage(v val) transition {
	return func(s Slots[val]) (Slots[val], bool, error) {
		next, changed := Stage(s, v)
		return next, changed, nil
	}
}

func promote(v, old val) transition {
	return func(s Slots[val]) (Slots[val], bool, error) { return Promote(s, delivery(v, old)) }
}

func cleanup(v, old val) transition {
	return func(s Slots[val]) (Slots[val], bool, error) {
		next, changed := Cleanup(s, delivery(v, old))
		return next, changed, nil
	}
}

func rollback(v, old val) transition {
	return func(s Slots[val]) (Slots[val], bool, error) { return Rollback(s, delivery(v, old)) }
}

func replace(v val) transition {
	return func(s Slots[val]) (Slots[val], bool, error) {
		next, changed := Replace(s, v)
		return next, changed, nil
	}
}

type slots = Slots[val]

func TestTransitions(t *testing.T) {
	tests := map[string]struct {
		in      slots
		do      transition
		want    slots // on success
		changed bool
		err     error          // a refusal: the slots' sentinel…
		engine  error          // …the engine's sentinel it wraps…
		reason  rotator.Reason // …and its classification
	}{
		"stage a first delivery as current": {
			in: slots{}, do: stage("a"), want: slots{Current: "a"}, changed: true,
		},
		"stage a first delivery over a pending copy of it": {
			in: slots{Pending: "a"}, do: stage("a"), want: slots{Current: "a"}, changed: true,
		},
		"stage beside the current value": {
			in: slots{Current: "a"}, do: stage("b"), want: slots{Current: "a", Pending: "b"}, changed: true,
		},
		"stage replaces another pending value and keeps previous": {
			in: slots{Current: "a", Pending: "c", Previous: "z"}, do: stage("b"),
			want: slots{Current: "a", Pending: "b", Previous: "z"}, changed: true,
		},
		"stage replay of the pending value": {
			in: slots{Current: "a", Pending: "b"}, do: stage("b"), want: slots{Current: "a", Pending: "b"},
		},
		"stage replay after promote": {
			in: slots{Current: "b", Previous: "a"}, do: stage("b"), want: slots{Current: "b", Previous: "a"},
		},
		"stage of an absent value": {
			in: slots{Current: "a"}, do: stage(""), want: slots{Current: "a"},
		},
		"promote the pending value": {
			in: slots{Current: "a", Pending: "b"}, do: promote("b", "a"),
			want: slots{Current: "b", Previous: "a"}, changed: true,
		},
		"promote replaces an older previous value": {
			in: slots{Current: "a", Pending: "b", Previous: "z"}, do: promote("b", "a"),
			want: slots{Current: "b", Previous: "a"}, changed: true,
		},
		"promote replay": {
			in: slots{Current: "b", Previous: "a"}, do: promote("b", "a"), want: slots{Current: "b", Previous: "a"},
		},
		"promote of an unstaged value": {
			in: slots{Current: "a"}, do: promote("b", "a"),
			err: ErrNotStaged, engine: rotator.ErrNotFound, reason: rotator.ReasonInvalid,
		},
		"promote when another value is pending": {
			in: slots{Current: "a", Pending: "c"}, do: promote("b", "a"),
			err: ErrNotStaged, engine: rotator.ErrNotFound, reason: rotator.ReasonInvalid,
		},
		"promote on an empty target": {
			in: slots{}, do: promote("b", ""),
			err: ErrNotStaged, engine: rotator.ErrNotFound, reason: rotator.ReasonInvalid,
		},
		"promote of no fingerprint": {
			in: slots{}, do: promote("", ""),
			err: ErrNotStaged, engine: rotator.ErrNotFound, reason: rotator.ReasonInvalid,
		},
		"cleanup drops previous": {
			in: slots{Current: "b", Previous: "a"}, do: cleanup("b", "a"), want: slots{Current: "b"}, changed: true,
		},
		"cleanup drops a pending value of another delivery": {
			in: slots{Current: "b", Pending: "c", Previous: "a"}, do: cleanup("b", "a"), want: slots{Current: "b"}, changed: true,
		},
		"cleanup keeps the delivery's own pending value": {
			in: slots{Current: "a", Pending: "b"}, do: cleanup("b", "a"), want: slots{Current: "a", Pending: "b"},
		},
		"cleanup replay": {
			in: slots{Current: "b"}, do: cleanup("b", "a"), want: slots{Current: "b"},
		},
		"replace makes the value the only one": {
			in: slots{Current: "a", Pending: "c", Previous: "z"}, do: replace("b"), want: slots{Current: "b"}, changed: true,
		},
		"replace a first delivery": {
			in: slots{}, do: replace("b"), want: slots{Current: "b"}, changed: true,
		},
		"replace drops what is left beside the value": {
			in: slots{Current: "b", Previous: "a"}, do: replace("b"), want: slots{Current: "b"}, changed: true,
		},
		"replace replay": {
			in: slots{Current: "b"}, do: replace("b"), want: slots{Current: "b"},
		},
		"replace with an absent value": {
			in: slots{Current: "a", Previous: "z"}, do: replace(""), want: slots{Current: "a", Previous: "z"},
		},
		"rollback after promote restores previous": {
			in: slots{Current: "b", Previous: "a"}, do: rollback("b", "a"), want: slots{Current: "a"}, changed: true,
		},
		"rollback restores the old value from pending": {
			in: slots{Current: "b", Pending: "a"}, do: rollback("b", "a"), want: slots{Current: "a"}, changed: true,
		},
		"rollback after stage drops pending": {
			in: slots{Current: "a", Pending: "b"}, do: rollback("b", "a"), want: slots{Current: "a"}, changed: true,
		},
		"rollback drops the delivery from previous": {
			in: slots{Current: "a", Previous: "b"}, do: rollback("b", "a"), want: slots{Current: "a"}, changed: true,
		},
		"rollback replay": {
			in: slots{Current: "a"}, do: rollback("b", "a"), want: slots{Current: "a"},
		},
		"rollback of a delivery the target never saw": {
			in: slots{Current: "a", Previous: "z"}, do: rollback("c", "a"), want: slots{Current: "a", Previous: "z"},
		},
		"rollback of a delivery of the current value onto itself": {
			in: slots{Current: "a"}, do: rollback("a", "a"), want: slots{Current: "a"},
		},
		"rollback of no fingerprint": {
			in: slots{Current: "a", Pending: "b"}, do: rollback("", "a"), want: slots{Current: "a", Pending: "b"},
		},
		"rollback of a first delivery": {
			in: slots{Current: "a"}, do: rollback("a", ""),
			err: ErrOnlyCurrent, engine: rotator.ErrBadState, reason: rotator.ReasonInvariant,
		},
		"rollback when the old value is gone": {
			in: slots{Current: "b"}, do: rollback("b", "a"),
			err: ErrOldGone, engine: rotator.ErrNotFound, reason: rotator.ReasonInvalid,
		},
		"rollback when only another value is left": {
			in: slots{Current: "b", Previous: "z"}, do: rollback("b", "a"),
			err: ErrOldGone, engine: rotator.ErrNotFound, reason: rotator.ReasonInvalid,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, changed, err := tc.do(tc.in)
			if tc.err != nil {
				switch {
				case !errors.Is(err, tc.err) || !errors.Is(err, tc.engine):
					t.Fatalf("err = %v, want %v wrapping %v", err, tc.err, tc.engine)
				case !rotator.IsPermanent(err) || rotator.ReasonOf(err) != tc.reason:
					t.Fatalf("err %v: permanent %v reason %q, want permanent reason %q",
						err, rotator.IsPermanent(err), rotator.ReasonOf(err), tc.reason)
				case changed || got != tc.in:
					t.Fatalf("a refusal changed the slots: %+v (changed %v), want %+v", got, changed, tc.in)
				}
				return
			}
			if err != nil || got != tc.want || changed != tc.changed {
				t.Fatalf("got %+v, changed %v, err %v; want %+v, changed %v", got, changed, err, tc.want, tc.changed)
			}
			// Every transition is idempotent: replaying it writes nothing.
			again, changed, err := tc.do(got)
			if err != nil || changed || again != got {
				t.Fatalf("replay: got %+v, changed %v, err %v; want %+v unchanged", again, changed, err, got)
			}
		})
	}
}

// entry is a slot value as the file sink keeps it: a pointer with
// metadata, nil when absent.
type entry struct {
	value string
	gen   int
}

func (e *entry) Fingerprint() string {
	if e == nil {
		return ""
	}
	return val(e.value).Fingerprint()
}

// TestPointerValues runs a rotation over pointer values: a nil pointer is
// an absent slot, and the entries move between slots with their metadata.
func TestPointerValues(t *testing.T) {
	g1, g2 := &entry{value: "a", gen: 1}, &entry{value: "b", gen: 2}
	d := rotator.Delivery{Fingerprint: g2.Fingerprint(), OldFingerprint: g1.Fingerprint()}

	s, changed := Stage(Slots[*entry]{}, g1)
	if !changed || s.Current != g1 || s.Pending != nil {
		t.Fatalf("first Stage: %+v, changed %v", s, changed)
	}
	s, _ = Stage(s, g2)
	s, changed, err := Promote(s, d)
	if err != nil || !changed || s.Current != g2 || s.Previous != g1 || s.Pending != nil {
		t.Fatalf("Promote: %+v, changed %v, err %v", s, changed, err)
	}
	s, changed, err = Rollback(s, d)
	if err != nil || !changed || s.Current != g1 || s.Current.gen != 1 || s.Previous != nil {
		t.Fatalf("Rollback: %+v, changed %v, err %v", s, changed, err)
	}
}

// TestMessages pins the texts users see (they were the sinks' before the
// algebra was shared) and that no error carries more than a short
// fingerprint.
func TestMessages(t *testing.T) {
	fp := val("b").Fingerprint()
	tests := map[string]struct {
		err  error
		want string
	}{
		"not staged":   {NotStaged(fp), "no pending value with this fingerprint to promote (fingerprint " + fp[:12] + "): not found"},
		"old gone":     {OldGone(fp), "the old value to restore is gone (old fingerprint " + fp[:12] + "): not found"},
		"only current": {OnlyCurrent(), "refusing to roll back a first delivery: it is the only current value: not allowed in this state"},
		"mismatch": {
			CheckDelivery(rotator.Delivery{Fingerprint: fp, Secret: rotator.NewSecret("c")}),
			"the delivery's secret does not match its fingerprint " + fp[:12],
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if tc.err == nil || tc.err.Error() != tc.want {
				t.Fatalf("got %v, want %q", tc.err, tc.want)
			}
		})
	}
}

func TestCheckDelivery(t *testing.T) {
	fp := val("b").Fingerprint()
	tests := map[string]struct {
		d  rotator.Delivery
		ok bool
	}{
		"matching secret": {rotator.Delivery{Fingerprint: fp, Secret: rotator.NewSecret("b")}, true},
		"other secret":    {rotator.Delivery{Fingerprint: fp, Secret: rotator.NewSecret("c")}, false},
		"no secret":       {rotator.Delivery{Fingerprint: fp}, false},
		"no fingerprint":  {rotator.Delivery{Secret: rotator.NewSecret("b")}, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := CheckDelivery(tc.d)
			if tc.ok {
				if err != nil {
					t.Fatalf("CheckDelivery: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrMismatch) || !rotator.IsPermanent(err) || rotator.ReasonOf(err) != rotator.ReasonInvalid {
				t.Fatalf("CheckDelivery = %v, want a permanent invalid ErrMismatch", err)
			}
		})
	}
}
