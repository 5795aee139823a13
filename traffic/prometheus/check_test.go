package prometheus_test

import (
	"strings"
	"testing"

	"github.com/rekeyhq/rekey/testing/testenv"
)

// Check answers for a live Prometheus whatever the keys' metrics (none
// exist here), and fails with the connection error for a dead one.
func TestCheck(t *testing.T) {
	p := testenv.Prometheus(t, testenv.PromOptions{})
	if err := newSource(t, cfgFor(p.Addr, "", 0)).Check(t.Context()); err != nil {
		t.Fatalf("live Prometheus: %v", err)
	}
	err := newSource(t, cfgFor("http://127.0.0.1:1", "", 0)).Check(t.Context())
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("dead Prometheus: %v", err)
	}
}
