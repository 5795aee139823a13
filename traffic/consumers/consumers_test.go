package consumers

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/store/sqlite"
	"github.com/rekeyhq/rekey/store/sqlstore"
)

// The source counts the consumers heard from within the horizon that do
// not hold the new generation; too few attesting consumers is an error,
// never zero; a consumer silent beyond the horizon no longer counts; the
// watch (NotBefore) counts only attestations since the revoke; and it
// refuses the question it cannot answer.
func TestConsumers(t *testing.T) {
	ctx := context.Background()
	s, st, now := newSource(t, 2)
	attest := func(name string, gen int, ago time.Duration) {
		t.Helper()
		if err := st.RecordConsumer(ctx, rotator.ConsumerSeen{Key: "api", Name: name, Generation: gen, LastSeen: now.Add(-ago)}, time.Time{}, 100); err != nil {
			t.Fatal(err)
		}
	}
	q := rotator.TrafficQuery{Key: "api", OldGeneration: 1, NewGeneration: 2, NewName: "api-v2", Question: rotator.OldKeyUse}
	attest("billing", 2, time.Minute)
	if _, err := s.Unauthorized(ctx, q); err == nil || rotator.IsPermanent(err) || !strings.Contains(err.Error(), "1 consumer(s) attested within 10m0s, at least 2 needed") {
		t.Fatalf("one consumer of two needed: %v", err)
	}
	attest("search", 1, 2*time.Minute)
	attest("gone", 1, 11*time.Minute)
	r, err := s.Unauthorized(ctx, q)
	if err != nil || r.Value != 1 || !strings.Contains(r.Detail, "search on api-v1") || strings.Contains(r.Detail, "gone on") ||
		!strings.Contains(r.Detail, "1 not heard from within the horizon") || r.Query == "" {
		t.Fatalf("reading %+v, %v", r, err)
	}
	attest("search", 2, 0)
	if r, err := s.Unauthorized(ctx, q); err != nil || r.Value != 0 {
		t.Fatalf("every live consumer on the new generation: %+v, %v", r, err)
	}
	watch := q
	watch.NotBefore = now.Add(-30 * time.Second) // billing attested before the revoke
	if _, err := s.Unauthorized(ctx, watch); err == nil {
		t.Fatal("only one consumer attested since the revoke; the watch must not count the others")
	}
	q.Question = rotator.NewKeyFailures
	if _, err := s.Unauthorized(ctx, q); err == nil || !rotator.IsPermanent(err) {
		t.Fatalf("new-key failures asked of attestations: %v", err)
	}
	if a := (Config{}).Answers(nil); len(a) != 1 || a[0] != rotator.OldKeyUse {
		t.Fatalf("answers %v", a)
	}
}

// A rollback asks with the generations swapped: the "new" one is the
// older generation restored, and a consumer still on the generation
// rolled back from is behind it. On the code before, the rollback asked
// with no generation ("no new generation to compare attestations with")
// and waited for max_wait.
func TestConsumersDuringARollback(t *testing.T) {
	ctx := context.Background()
	s, st, now := newSource(t, 1)
	if err := st.RecordConsumer(ctx, rotator.ConsumerSeen{Key: "api", Name: "billing", Generation: 2, LastSeen: now.Add(-time.Minute)}, time.Time{}, 100); err != nil {
		t.Fatal(err)
	}
	back := rotator.TrafficQuery{Key: "api", Question: rotator.OldKeyUse, OldGeneration: 2, OldName: "api-v2", NewGeneration: 1, NewName: "api-v1"}
	if r, err := s.Unauthorized(ctx, back); err != nil || r.Value != 1 || !strings.Contains(r.Detail, "billing on api-v2") {
		t.Fatalf("a consumer still on the generation rolled back from: %+v, %v", r, err)
	}
	if err := st.RecordConsumer(ctx, rotator.ConsumerSeen{Key: "api", Name: "billing", Generation: 1, LastSeen: now}, time.Time{}, 100); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Unauthorized(ctx, back); err != nil || r.Value != 0 {
		t.Fatalf("the consumer moved back: %+v, %v", r, err)
	}
}

// newSource is a consumers source over a real store (horizon 10m, at
// least min consumers) whose clock stands at now.
func newSource(t *testing.T, min int) (*Source, *sqlstore.Store, time.Time) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "rekey.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	s, err := New(Config{Horizon: 10 * time.Minute, MinConsumers: min}, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return now }
	return s, st, now
}
