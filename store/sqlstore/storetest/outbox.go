package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// testOutboxReleaseOwnClaim: a daemon releases only what it still claims.
// a claims two notifications; its claim runs out and b claims them; a's
// late release (of its own, expired claim) must leave b's claim alone,
// while b's release makes them due again at once.
func testOutboxReleaseOwnClaim(t *testing.T, s rotator.Store) {
	o, ok := s.(rotator.Outbox)
	b, bok := s.(rotator.BatchOutbox)
	if !ok || !bok {
		t.Fatal("the store has no batch outbox")
	}
	ctx := ctxFor(t)
	t0 := base
	var rows []rotator.Notification
	for _, id := range []string{"e1", "e2"} {
		rows = append(rows, rotator.Notification{Notifier: "n", Event: rotator.Event{ID: id, At: t0, Kind: rotator.EventStarted, RotationID: "rot-1", Key: "k"}})
	}
	if err := s.Save(ctx, rotator.Commit{Outbox: rows}); err != nil {
		t.Fatal(err)
	}
	due := func(at time.Time) []string {
		t.Helper()
		items, err := o.DueOutbox(ctx, "n", at, 10)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, it := range items {
			ids = append(ids, it.ID)
		}
		return ids
	}
	ids := due(t0)
	if !slices.Equal(ids, []string{"n/e1", "n/e2"}) {
		t.Fatalf("due = %v", ids)
	}
	aUntil := t0.Add(time.Minute)
	if n, err := b.ClaimOutboxBatch(ctx, ids, t0, aUntil); err != nil || n != 2 {
		t.Fatalf("a's claim = %d, %v", n, err)
	}
	bNow, bUntil := t0.Add(2*time.Minute), t0.Add(3*time.Minute)
	if n, err := b.ClaimOutboxBatch(ctx, ids, bNow, bUntil); err != nil || n != 2 {
		t.Fatalf("b's claim after a's ran out = %d, %v", n, err)
	}
	if err := b.ReleaseOutbox(ctx, ids, aUntil, t0.Add(90*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := due(bUntil.Add(-time.Second)); len(got) != 0 {
		t.Fatalf("a's stale release freed b's claim: due %v before b's claim ends", got)
	}
	// b releases e2 alone: it stays behind e1, which b still claims (the
	// queue is never overtaken); once b releases e1 too, both are due.
	if err := b.ReleaseOutbox(ctx, ids[1:], bUntil, bNow); err != nil {
		t.Fatal(err)
	}
	if got := due(bNow); len(got) != 0 {
		t.Fatalf("n/e2 overtook n/e1, which b still claims: due %v", got)
	}
	if err := b.ReleaseOutbox(ctx, ids[:1], bUntil, bNow); err != nil {
		t.Fatal(err)
	}
	if got := due(bNow); !slices.Equal(got, []string{"n/e1", "n/e2"}) {
		t.Fatalf("due after b released both = %v, want [n/e1 n/e2]", got)
	}
}
