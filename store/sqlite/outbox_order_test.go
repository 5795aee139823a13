package sqlite

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// A notification waiting for its retry holds back what follows it in its
// notifier's lane (never overtaken, whichever poll or daemon reads next);
// another lane goes on.
func TestDueOutboxNeverOvertakesAWaitingItem(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "rekey.db"))
	ctx := t.Context()
	var rows []rotator.Notification
	for _, id := range []string{"ev-1", "ev-2", "ev-3"} {
		rows = append(rows, rotator.Notification{Notifier: "n", Lane: 1, Event: rotator.Event{ID: id, Key: "api"}})
	}
	rows = append(rows, rotator.Notification{Notifier: "n", Lane: 0, Event: rotator.Event{ID: "urgent", Key: "api"}})
	if err := s.Save(ctx, rotator.Commit{Outbox: rows}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(time.Second)
	if err := s.MarkRetry(ctx, "n/ev-2", 1, now.Add(time.Minute), "briefly unavailable", false); err != nil {
		t.Fatal(err)
	}
	due, err := s.DueOutbox(ctx, "n", now, 10)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, it := range due {
		ids = append(ids, it.Event.ID)
	}
	if len(ids) != 2 || ids[0] != "urgent" || ids[1] != "ev-1" {
		t.Fatalf("due %v, want [urgent ev-1] (ev-3 waits behind ev-2)", ids)
	}
	due, _ = s.DueOutbox(ctx, "n", now.Add(2*time.Minute), 10)
	if len(due) != 4 || due[2].Event.ID != "ev-2" || due[3].Event.ID != "ev-3" {
		t.Fatalf("after the backoff: %d due", len(due))
	}
}
