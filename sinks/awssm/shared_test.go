package awssm

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// Two keys in one JSON secret, each in its own field, rotated by one sink
// in interleaved steps: what the sink remembers of the secret (labels and
// the fingerprints of versions) is kept per field, so each step reads its
// own key out of the versions the other key's steps created, and consumers
// of either key read its old value until its own promotion.
func TestKeysSharingASecret(t *testing.T) {
	m := startMoto(t)
	c := sdkClient(t, m)
	cfg := testConfig(m, FormatJSON)
	cfg.CreateIfMissing = true
	s := newTestSink(t, cfg)
	ctx := context.Background()
	id := fmt.Sprintf("shared-%d", time.Now().UnixNano())
	ta := rotator.Target{Key: "a", Path: id, Params: map[string]string{"field": "a"}}
	tb := rotator.Target{Key: "b", Path: id, Params: map[string]string{"field": "b"}}
	val := func(key string, gen int) string { return fmt.Sprintf("%s-secret-%d", key, gen) }
	d := func(key string, gen int) rotator.Delivery {
		dd := rotator.Delivery{RotationID: fmt.Sprintf("r-%s-%d", key, gen), Generation: gen,
			Fingerprint: rotator.Fingerprint(val(key, gen)), Secret: rotator.NewSecret(val(key, gen))}
		if gen > 1 {
			dd.OldGeneration, dd.OldFingerprint = gen-1, rotator.Fingerprint(val(key, gen-1))
		}
		return dd
	}
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	current := func() map[string]any {
		t.Helper()
		raw, found, err := readCurrent(ctx, c, id)
		must("read", err)
		var doc map[string]any
		if !found || json.Unmarshal([]byte(raw), &doc) != nil {
			t.Fatal("no readable current JSON value")
		}
		return doc
	}
	must("stage a1", s.Stage(ctx, ta, d("a", 1)))
	must("stage b1", s.Stage(ctx, tb, d("b", 1)))
	for gen := 2; gen <= 3; gen++ {
		for _, tg := range []rotator.Target{ta, tb} {
			_, err := s.Inspect(ctx, tg)
			must("inspect", err)
		}
		must("stage a", s.Stage(ctx, ta, d("a", gen)))
		must("stage b", s.Stage(ctx, tb, d("b", gen)))
		if doc := current(); doc["a"] != val("a", gen-1) || doc["b"] != val("b", gen-1) {
			t.Fatalf("after staging generation %d consumers read another value than generation %d", gen, gen-1)
		}
		must("promote a", s.Promote(ctx, ta, d("a", gen)))
		must("promote b", s.Promote(ctx, tb, d("b", gen)))
		must("cleanup b", s.Cleanup(ctx, tb, d("b", gen)))
		must("cleanup a", s.Cleanup(ctx, ta, d("a", gen)))
		if doc := current(); doc["a"] != val("a", gen) || doc["b"] != val("b", gen) {
			t.Fatalf("after generation %d consumers read another value", gen)
		}
	}
	for _, tg := range []rotator.Target{ta, tb} {
		st, err := s.Inspect(ctx, tg)
		must("inspect", err)
		if st.Current != rotator.Fingerprint(val(tg.Key, 3)) {
			t.Fatalf("key %s: current is not generation 3", tg.Key)
		}
	}
}
