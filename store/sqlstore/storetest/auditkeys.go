package storetest

import (
	"strings"
	"testing"

	"github.com/rekeyhq/rekey/rotator"
)

// testAuditKeyed takes an existing (unkeyed) trail through an audit key and
// a rotation of that key: every event stays verifiable under the scheme it
// was sealed with, and an edit recomputed without the key is found at its
// event.
func testAuditKeyed(t *testing.T, s rotator.Store) {
	ss := sqlStore(t, s)
	keyA := rotator.NewSecret(strings.Repeat("a", 32))
	keyB := rotator.NewSecret(strings.Repeat("b", 32))
	steps := []rotator.AuditKeys{
		{},
		{Current: "a", Keys: map[string]rotator.Secret{"a": keyA}},
		{Current: "b", Keys: map[string]rotator.Secret{"a": keyA, "b": keyB}},
	}
	for i, k := range steps {
		ss.SetAuditKeys(k)
		if err := appendAudit(ctxFor(t), s, event("", "k", name("step", i)), event("", "k", name("step", i)+"-2")); err != nil {
			t.Fatalf("append under keys %q: %v", k.Current, err)
		}
		verifyClean(t, s)
	}
	evs := allAudit(t, s)
	for i, want := range []string{"", "", "a", "a", "b", "b"} {
		if got := rotator.AuditHashKeyID(evs[i].Hash); got != want {
			t.Errorf("event %d sealed with %q, want %q", evs[i].Seq, got, want)
		}
	}
	seq, hash, err := ss.AuditHead(ctxFor(t))
	if err != nil || seq != 6 || hash != evs[5].Hash {
		t.Fatalf("audit head = %d %q, %v; want 6 %q", seq, hash, err, evs[5].Hash)
	}

	// Edit event 3 (keyed with a) and recompute the chain with a guessed a.
	guessed := rotator.AuditKeys{Current: "a", Keys: map[string]rotator.Secret{"a": rotator.NewSecret(strings.Repeat("g", 32))}}
	evs[2].Actor = "mallory"
	for i := 2; i < len(evs); i++ {
		evs[i].PrevHash = evs[i-1].Hash
		evs[i].Hash = guessed.Seal(evs[i].PrevHash, evs[i])
		exec(t, ss, `UPDATE audit_events SET actor = ?, prev_hash = ?, hash = ? WHERE seq = ?`, evs[i].Actor, evs[i].PrevHash, evs[i].Hash, evs[i].Seq)
	}
	exec(t, ss, `UPDATE audit_head SET hash = ? WHERE id = 1`, evs[5].Hash)
	problems := verify(t, s)
	if len(problems) == 0 || problems[0].Seq != 3 || !strings.Contains(problems[0].Problem, "MAC mismatch") {
		t.Fatalf("problems = %+v, want a MAC mismatch at event 3", problems)
	}
}
