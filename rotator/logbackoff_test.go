package rotator

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// A failure that repeats every poll is logged at once, then with doubling
// intervals, each line counting what it left out; the recovery is logged
// once.
func TestQuietLogBacksOff(t *testing.T) {
	var buf bytes.Buffer
	q := newQuietLog(slog.New(slog.NewTextHandler(&buf, nil)))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	q.now = func() time.Time { return now }
	for range 60 { // one failure a second for a minute
		q.warn("due", "list due rotations", "err", "connection refused")
		now = now.Add(time.Second)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	// At 0s, then after 2s, 4s, 8s, 16s, 32s: 0, 2, 6, 14, 30 (and 62 > 59).
	if len(lines) != 5 {
		t.Fatalf("%d lines for 60 failures, want 5:\n%s", len(lines), buf.String())
	}
	if strings.Contains(lines[0], "repeated") || !strings.Contains(lines[4], "repeated=15") {
		t.Errorf("repeat counts wrong:\n%s", buf.String())
	}
	buf.Reset()
	q.ok("due", "store reachable again")
	q.ok("due", "store reachable again")
	if n := strings.Count(buf.String(), "reachable again"); n != 1 {
		t.Errorf("recovery logged %d times, want once:\n%s", n, buf.String())
	}
}
