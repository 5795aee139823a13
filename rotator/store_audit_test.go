package rotator_test

import (
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

var (
	keyA = rotator.NewSecret(strings.Repeat("a", 32))
	keyB = rotator.NewSecret(strings.Repeat("b", 32))
)

// chain appends n events sealed by k after evs.
func chain(k rotator.AuditKeys, evs []rotator.AuditEvent, n int) []rotator.AuditEvent {
	for range n {
		e := rotator.AuditEvent{Seq: int64(len(evs) + 1), At: time.Date(2026, 1, 1, 0, 0, len(evs), 0, time.UTC),
			Key: "k", Actor: "alice@example.com", Action: "rotation.started", Detail: map[string]string{"n": "1"}}
		if len(evs) > 0 {
			e.PrevHash = evs[len(evs)-1].Hash
		}
		e.Hash = k.Seal(e.PrevHash, e)
		evs = append(evs, e)
	}
	return evs
}

// reseal recomputes the chain from i on with k, as an attacker would.
func reseal(k rotator.AuditKeys, evs []rotator.AuditEvent, from int) {
	for i := from; i < len(evs); i++ {
		if i > 0 {
			evs[i].PrevHash = evs[i-1].Hash
		}
		evs[i].Hash = k.Seal(evs[i].PrevHash, evs[i])
	}
}

func TestAuditKeysVerify(t *testing.T) {
	unkeyed := rotator.AuditKeys{}
	a := rotator.AuditKeys{Current: "a", Keys: map[string]rotator.Secret{"a": keyA}}
	// After a rotation of the audit key: b seals, a still verifies.
	ab := rotator.AuditKeys{Current: "b", Keys: map[string]rotator.Secret{"a": keyA, "b": keyB}}
	attacker := rotator.AuditKeys{Current: "a", Keys: map[string]rotator.Secret{"a": rotator.NewSecret(strings.Repeat("x", 32))}}

	tests := map[string]struct {
		build  func() []rotator.AuditEvent
		verify rotator.AuditKeys
		seq    int64  // first problem's event; 0: intact
		want   string // in its message
	}{
		"unkeyed chain": {build: func() []rotator.AuditEvent { return chain(unkeyed, nil, 4) }, verify: unkeyed},
		"unkeyed then keyed (an existing database gets a key)": {
			build: func() []rotator.AuditEvent { return chain(a, chain(unkeyed, nil, 3), 3) }, verify: a},
		"across an audit key rotation": {
			build: func() []rotator.AuditEvent { return chain(ab, chain(a, chain(unkeyed, nil, 2), 2), 2) }, verify: ab},
		"retired key no longer configured": {
			build:  func() []rotator.AuditEvent { return chain(ab, chain(a, nil, 2), 2) },
			verify: rotator.AuditKeys{Current: "b", Keys: map[string]rotator.Secret{"b": keyB}},
			seq:    1, want: `audit key "a", which is not configured`},
		"keyed event edited": {
			build: func() []rotator.AuditEvent {
				evs := chain(a, nil, 4)
				evs[2].Actor = "mallory"
				return evs
			}, verify: a, seq: 3, want: "MAC mismatch"},
		"edited and recomputed with a guessed key": {
			build: func() []rotator.AuditEvent {
				evs := chain(a, nil, 4)
				evs[1].Actor = "mallory"
				reseal(attacker, evs, 1)
				return evs
			}, verify: a, seq: 2, want: "MAC mismatch"},
		"edited and recomputed unkeyed (downgrade)": {
			build: func() []rotator.AuditEvent {
				evs := chain(a, chain(unkeyed, nil, 1), 3)
				evs[2].Actor = "mallory"
				reseal(unkeyed, evs, 2)
				return evs
			}, verify: a, seq: 3, want: "unkeyed event after keyed events from 2"},
		"relabelled with another key id": {
			build: func() []rotator.AuditEvent {
				evs := chain(ab, chain(a, nil, 1), 1)
				evs[1].Hash = strings.Replace(evs[1].Hash, ":b:", ":a:", 1)
				return evs
			}, verify: ab, seq: 2, want: "MAC mismatch"},
		"keyed chain verified without keys": {
			build: func() []rotator.AuditEvent { return chain(a, nil, 1) }, verify: unkeyed,
			seq: 1, want: "not configured"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			problems := tc.verify.Verify(tc.build())
			if tc.seq == 0 {
				if len(problems) > 0 {
					t.Fatalf("problems in an intact chain: %v", problems)
				}
				return
			}
			if len(problems) == 0 {
				t.Fatalf("no problem found; want event %d: %q", tc.seq, tc.want)
			}
			if p := problems[0]; p.Seq != tc.seq || !strings.Contains(p.Problem, tc.want) {
				t.Errorf("first problem = %+v, want event %d: %q", p, tc.seq, tc.want)
			}
		})
	}
}

func TestAuditHashKeyID(t *testing.T) {
	a := rotator.AuditKeys{Current: "2026-06", Keys: map[string]rotator.Secret{"2026-06": keyA}}
	e := rotator.AuditEvent{Seq: 1, Action: "x"}
	if got := rotator.AuditHashKeyID(a.Seal("", e)); got != "2026-06" {
		t.Errorf("key id = %q, want 2026-06", got)
	}
	if got := rotator.AuditHashKeyID(rotator.AuditHash("", e)); got != "" {
		t.Errorf("unkeyed key id = %q, want none", got)
	}
	if h := a.Seal("", e); strings.Contains(h, keyA.Reveal()) {
		t.Error("the hash holds the key")
	}
}

func TestAuditKeysValidate(t *testing.T) {
	for name, k := range map[string]rotator.AuditKeys{
		"current missing": {Current: "a"},
		"empty key":       {Current: "a", Keys: map[string]rotator.Secret{"a": {}}},
		"colon in id":     {Keys: map[string]rotator.Secret{"a:b": keyA}},
	} {
		if k.Validate() == nil {
			t.Errorf("%s: valid", name)
		}
	}
	if err := (rotator.AuditKeys{Current: "a", Keys: map[string]rotator.Secret{"a": keyA, "b": keyB}}).Validate(); err != nil {
		t.Error(err)
	}
}
