package kubeadapt

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// Check scrapes once without touching a key's baseline: the first poll
// after it still establishes the baseline. A dead server fails it.
func TestCheckLeavesBaselinesAlone(t *testing.T) {
	e := newEnv(t)
	oldID, oldSecret := e.key(t, "billing-v1")
	e.call(t, oldSecret, 1, http.StatusOK)
	s := e.source(t, nil)
	if err := s.Check(context.Background()); err != nil {
		t.Fatalf("live server: %v", err)
	}
	q := rotator.TrafficQuery{Key: "billing", OldID: oldID, OldName: "billing-v1"}
	wantErr(t, s, q, false, "baseline established")
	e.clock.Advance(time.Second)
	if err := s.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(9 * time.Second)
	wantRate(t, s, q, 0, "in 10s")
	dead := e.source(t, func(c *Config) { c.URL = "http://127.0.0.1:1/metrics" })
	if err := dead.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("dead server: %v", err)
	}
}
