package slack

import (
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// The parent message says what a rotation waits for — the traffic source's
// error while draining against a dead Prometheus, then the quiet period's
// progress — and drops the line once the rotation moves on.
func TestParentShowsWaiting(t *testing.T) {
	e := newEnv(t, nil)
	b := newEvents("rot_wait0001", "payments-api")
	at := time.Date(2025, 3, 1, 10, 30, 0, 0, time.UTC)
	started := b.started()
	toDrain := b.phase(rotator.PhaseCuttingOver, rotator.PhaseDraining, nil)
	toDrain.Waiting = &rotator.Waiting{Reason: rotator.WaitTrafficError, Detail: "traffic source prom does not answer; the quiet period cannot start",
		Since: at, NextCheck: at.Add(10 * time.Second), Deadline: at.Add(time.Hour), LastError: "dial tcp 127.0.0.1:9: connection refused"}
	retry := b.ev(rotator.EventRetrying, rotator.PhaseDraining, rotator.SeverityWarning, "payments-api: still waiting", nil)
	retry.Waiting = &rotator.Waiting{Reason: rotator.WaitQuietPeriod, Detail: "no 401 traffic on source prom; quiet for 12s of 30s",
		Since: at, NextCheck: at.Add(time.Minute), Progress: &rotator.Progress{Done: 12, Of: 30, Unit: "s"}}
	revoking := b.phase(rotator.PhaseDraining, rotator.PhaseRevoking, nil)
	e.notify(started, toDrain, retry, revoking)

	updates := e.slack.byMethod("chat.update")
	if len(updates) != 3 {
		t.Fatalf("%d updates, want 3", len(updates))
	}
	first := updates[0].text(t)
	for _, want := range []string{"Waiting: traffic error", "connection refused", "next check", "deadline"} {
		if !strings.Contains(first, want) {
			t.Errorf("draining message lacks %q:\n%s", want, first)
		}
	}
	if second := updates[1].text(t); !strings.Contains(second, "Waiting: quiet period") || !strings.Contains(second, "12 of 30 s") || strings.Contains(second, "connection refused") {
		t.Errorf("quiet period message:\n%s", second)
	}
	if last := updates[2].text(t); strings.Contains(last, "Waiting:") {
		t.Errorf("a running rotation still shows a wait:\n%s", last)
	}
}
