package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// testConsumers: an attestation is upserted (first_seen stays, generation
// and last_seen move), consumers are listed most recent first and per key,
// those not seen since forgetBefore are forgotten, and a new consumer past
// the per-key bound is refused while a known one may still attest.
func testConsumers(t *testing.T, s rotator.Store) {
	cs, ok := s.(rotator.ConsumerStore)
	if !ok {
		t.Fatalf("%T is not a rotator.ConsumerStore", s)
	}
	ctx := t.Context()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rec := func(key, name string, gen int, at time.Time, forget time.Time, max int) error {
		return cs.RecordConsumer(ctx, rotator.ConsumerSeen{Key: key, Name: name, Generation: gen, LastSeen: at, Via: "hook"}, forget, max)
	}
	for _, c := range []struct {
		key, name string
		gen       int
		at        time.Time
	}{{"api", "billing", 1, t0}, {"api", "search", 1, t0.Add(time.Second)}, {"other", "billing", 7, t0}, {"api", "billing", 2, t0.Add(time.Minute)}} {
		if err := rec(c.key, c.name, c.gen, c.at, time.Time{}, 10); err != nil {
			t.Fatal(err)
		}
	}
	got, err := cs.Consumers(ctx, "api")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "billing" || got[0].Generation != 2 || !got[0].LastSeen.Equal(t0.Add(time.Minute)) ||
		!got[0].FirstSeen.Equal(t0) || got[0].Via != "hook" || got[1].Name != "search" || got[1].Generation != 1 {
		t.Fatalf("Consumers(api) = %+v", got)
	}
	if err := rec("api", "third", 2, t0.Add(2*time.Minute), time.Time{}, 2); !errors.Is(err, rotator.ErrTooManyConsumers) {
		t.Fatalf("a third consumer past the bound of 2: err = %v", err)
	}
	if err := rec("api", "search", 2, t0.Add(2*time.Minute), time.Time{}, 2); err != nil {
		t.Fatalf("a known consumer at the bound: %v", err)
	}
	// billing was last seen at t0+1m: forgotten by a retention cut at t0+90s.
	if err := rec("api", "search", 2, t0.Add(3*time.Minute), t0.Add(90*time.Second), 2); err != nil {
		t.Fatal(err)
	}
	got, _ = cs.Consumers(ctx, "api")
	if len(got) != 1 || got[0].Name != "search" {
		t.Fatalf("after the retention cut: %+v", got)
	}
	if other, _ := cs.Consumers(ctx, "other"); len(other) != 1 || other[0].Generation != 7 {
		t.Fatalf("another key's consumers changed: %+v", other)
	}
}
