package storetest

import (
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/store/sqlstore"
)

func testAuditFilters(t *testing.T, s rotator.Store) {
	create(t, s, newRotation("rot-a", "a"))
	create(t, s, newRotation("rot-b", "b"))
	if err := appendAudit(ctxFor(t), s, event("", "a", "key.age_warning"), event("", "", "daemon.started")); err != nil {
		t.Fatalf("append: %v", err)
	}
	// Seq: 1 rot-a, 2 rot-b, 3 a (no rotation), 4 daemon.
	tests := map[string]struct {
		filter rotator.AuditFilter
		want   []int64
	}{
		"all":         {rotator.AuditFilter{}, []int64{1, 2, 3, 4}},
		"key":         {rotator.AuditFilter{Key: "a"}, []int64{1, 3}},
		"rotation":    {rotator.AuditFilter{RotationID: "rot-b"}, []int64{2}},
		"after":       {rotator.AuditFilter{AfterSeq: 2}, []int64{3, 4}},
		"after+limit": {rotator.AuditFilter{AfterSeq: 1, Limit: 2}, []int64{2, 3}},
		"no match":    {rotator.AuditFilter{Key: "b", RotationID: "rot-a"}, nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			evs, err := s.Audit(ctxFor(t), tc.filter)
			if err != nil {
				t.Fatalf("audit: %v", err)
			}
			var got []int64
			for _, ev := range evs {
				got = append(got, ev.Seq)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("seqs = %v, want %v", got, tc.want)
			}
		})
	}
}

// concurrentAudit appends from 16 goroutines, through both stores, with
// single events, batches and rotation saves mixed: the chain must come out
// gap-free and verified.
func concurrentAudit(t *testing.T, a, b rotator.Store) {
	const writers, rounds = 16, 10
	for w := range writers {
		create(t, a, newRotation(name("rot", w), name("key", w)))
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		s := a
		if w%2 == 1 {
			s = b
		}
		wg.Go(func() {
			<-start
			r := get(t, s, name("rot", w))
			for i := range rounds {
				var err error
				switch i % 3 {
				case 0:
					err = appendAudit(ctxFor(t), s, event("", r.Key, "key.checked"))
				case 1:
					err = appendAudit(ctxFor(t), s, event(r.ID, r.Key, "a"), event(r.ID, r.Key, "b"))
				default:
					r.Attempts++
					err = s.Save(ctxFor(t), rotator.Commit{Rotation: r, Audit: []rotator.AuditEvent{event(r.ID, r.Key, "rotation.retrying")}})
				}
				if err != nil {
					t.Errorf("writer %d round %d: %v", w, i, err)
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	evs := allAudit(t, a)
	// Per writer and 10 rounds: 4 singles, 3 pairs, 3 saves = 13 events,
	// after the writers' 16 creates.
	if want := writers + writers*13; len(evs) != want {
		t.Fatalf("%d audit events, want %d", len(evs), want)
	}
	for i, ev := range evs {
		if ev.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d", i, ev.Seq)
		}
	}
	verifyClean(t, a)
	verifyClean(t, b)
}

// testAuditUncleanText appends strings PostgreSQL or JSON could not keep
// byte for byte: the store stores a cleaned form and hashes that, so the
// chain still verifies.
func testAuditUncleanText(t *testing.T, s rotator.Store) {
	ev := event("", "k\x00ey", "odd\xffaction")
	ev.Detail = map[string]string{"bad\xfe": "nul\x00here", "ok": "<&>"}
	evs := []rotator.AuditEvent{ev}
	if err := appendAudit(ctxFor(t), s, evs...); err != nil {
		t.Fatalf("append: %v", err)
	}
	stored := allAudit(t, s)
	if len(stored) != 1 || stored[0].Hash != evs[0].Hash || !sameDetail(stored[0].Detail, evs[0].Detail) {
		t.Fatalf("stored %+v, appended %+v", stored, evs)
	}
	verifyClean(t, s)
}

// testAuditTamper edits the stored trail behind the store's back, one way
// per case, and expects VerifyAudit to report it at the right event.
func testAuditTamper(t *testing.T, open func(t *testing.T) rotator.Store) {
	tests := map[string]struct {
		tamper  func(t *testing.T, s *sqlstore.Store, evs []rotator.AuditEvent)
		seq     int64
		problem string
	}{
		"edit a detail": {
			tamper: func(t *testing.T, s *sqlstore.Store, _ []rotator.AuditEvent) {
				exec(t, s, `UPDATE audit_events SET detail = ? WHERE seq = 3`, `{"note":"nothing to see"}`)
			},
			seq: 3, problem: "hash mismatch",
		},
		"edit an actor": {
			tamper: func(t *testing.T, s *sqlstore.Store, _ []rotator.AuditEvent) {
				exec(t, s, `UPDATE audit_events SET actor = 'someone-else' WHERE seq = 1`)
			},
			seq: 1, problem: "hash mismatch",
		},
		"delete a middle event": {
			tamper: func(t *testing.T, s *sqlstore.Store, _ []rotator.AuditEvent) {
				exec(t, s, `DELETE FROM audit_events WHERE seq = 3`)
			},
			seq: 4, problem: "sequence gap",
		},
		"delete the last event": {
			tamper: func(t *testing.T, s *sqlstore.Store, _ []rotator.AuditEvent) {
				exec(t, s, `DELETE FROM audit_events WHERE seq = 5`)
			},
			seq: 5, problem: "events at the end deleted",
		},
		"delete every event": {
			tamper: func(t *testing.T, s *sqlstore.Store, _ []rotator.AuditEvent) {
				exec(t, s, `DELETE FROM audit_events`)
			},
			seq: 5, problem: "events at the end deleted",
		},
		"rewrite the last event with a valid hash": {
			tamper: func(t *testing.T, s *sqlstore.Store, evs []rotator.AuditEvent) {
				last := evs[4]
				last.Detail = map[string]string{"note": "rewritten"}
				exec(t, s, `UPDATE audit_events SET detail = ?, hash = ? WHERE seq = 5`,
					rotator.MarshalDetail(last.Detail), rotator.AuditHash(last.PrevHash, last))
			},
			seq: 5, problem: "audit head hash differs",
		},
		"append a forged event": {
			tamper: func(t *testing.T, s *sqlstore.Store, evs []rotator.AuditEvent) {
				forged := event("", "k", "forged")
				forged.Seq, forged.PrevHash = 6, evs[4].Hash
				exec(t, s, `INSERT INTO audit_events (seq, at, rotation_id, key, actor, action, phase, detail, prev_hash, hash)
					VALUES (?, ?, '', 'k', ?, 'forged', ?, ?, ?, ?)`,
					forged.Seq, sqlstore.TimeText(forged.At), forged.Actor, string(forged.Phase), rotator.MarshalDetail(forged.Detail),
					forged.PrevHash, rotator.AuditHash(forged.PrevHash, forged))
			},
			seq: 6, problem: "past the audit head",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			for i := range 5 {
				if err := appendAudit(ctxFor(t), s, event("", "k", name+"-"+string(rune('a'+i)))); err != nil {
					t.Fatalf("append: %v", err)
				}
			}
			verifyClean(t, s)
			tc.tamper(t, sqlStore(t, s), allAudit(t, s))
			problems := verify(t, s)
			for _, p := range problems {
				if p.Seq == tc.seq && strings.Contains(p.Problem, tc.problem) {
					return
				}
			}
			t.Fatalf("problems = %+v, want one at seq %d about %q", problems, tc.seq, tc.problem)
		})
	}
}
