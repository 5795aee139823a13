package app

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// rekey_build_info names the stamped version and commit (make build, the
// Dockerfile stamp both; -trimpath builds carry no VCS revision of Go's).
func TestBuildInfoCarriesTheStampedCommit(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(buildInfo("v1.2.3", "6524f28a0d67"))
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 || len(mfs[0].GetMetric()) != 1 {
		t.Fatalf("gathered %v (%v)", mfs, err)
	}
	labels := map[string]string{}
	for _, l := range mfs[0].GetMetric()[0].GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	if labels["version"] != "v1.2.3" || labels["revision"] != "6524f28a0d67" || labels["goversion"] == "" {
		t.Fatalf("labels %v", labels)
	}
}
