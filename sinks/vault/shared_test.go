package vault

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/testing/testenv"
)

// Two keys in one secret, each in its own field, rotated by one sink in
// interleaved steps: each step chains on the version the other key's last
// write created, reads its own fields out of it, and nothing of the other
// key is lost. This is what the remembered state must get right.
func TestKeysSharingASecret(t *testing.T) {
	v := testenv.Vault(t)
	s := newSink(t, testConfig(t, v))
	ctx := context.Background()
	path := fmt.Sprintf("shared/%d", time.Now().UnixNano())
	ta := rotator.Target{Key: "a", Path: path, Params: map[string]string{"field": "a"}}
	tb := rotator.Target{Key: "b", Path: path, Params: map[string]string{"field": "b"}}
	d := func(key string, gen int) rotator.Delivery {
		val := fmt.Sprintf("%s-secret-%d", key, gen)
		dd := rotator.Delivery{RotationID: fmt.Sprintf("r-%s-%d", key, gen), Generation: gen, Fingerprint: rotator.Fingerprint(val), Secret: rotator.NewSecret(val)}
		if gen > 1 {
			dd.OldGeneration, dd.OldFingerprint = gen-1, rotator.Fingerprint(fmt.Sprintf("%s-secret-%d", key, gen-1))
		}
		return dd
	}
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must("stage a1", s.Stage(ctx, ta, d("a", 1)))
	must("stage b1", s.Stage(ctx, tb, d("b", 1)))
	kv := rootClient(t, v).KVv2("secret")
	field := func(name string) any {
		t.Helper()
		sec, err := kv.Get(ctx, path)
		must("read", err)
		return sec.Data[name]
	}
	for gen := 2; gen <= 3; gen++ {
		must("inspect a", func() error { _, err := s.Inspect(ctx, ta); return err }())
		must("stage a", s.Stage(ctx, ta, d("a", gen)))
		must("stage b", s.Stage(ctx, tb, d("b", gen)))
		// Consumers of either key still read its old value.
		for _, k := range []string{"a", "b"} {
			if got, want := field(k), fmt.Sprintf("%s-secret-%d", k, gen-1); got != want {
				t.Fatalf("after staging generation %d, field %s holds another value than %s", gen, k, want)
			}
		}
		must("promote a", s.Promote(ctx, ta, d("a", gen)))
		must("promote b", s.Promote(ctx, tb, d("b", gen)))
		must("cleanup b", s.Cleanup(ctx, tb, d("b", gen)))
		must("cleanup a", s.Cleanup(ctx, ta, d("a", gen)))
	}
	sec, err := kv.Get(ctx, path)
	must("read", err)
	want := map[string]any{"a": "a-secret-3", "b": "b-secret-3"}
	if len(sec.Data) != len(want) || sec.Data["a"] != want["a"] || sec.Data["b"] != want["b"] {
		t.Fatalf("secret holds fields %v, want only a and b at generation 3", keys(sec.Data))
	}
	for _, tg := range []rotator.Target{ta, tb} {
		st, err := s.Inspect(ctx, tg)
		must("inspect", err)
		if st.Current != rotator.Fingerprint(tg.Key+"-secret-3") || st.Pending != "" || st.Previous != "" {
			t.Fatalf("key %s: %+v", tg.Key, st)
		}
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
