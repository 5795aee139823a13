package deploy

import "testing"

// TestChartRulesAreTheRules: the chart's PrometheusRule is rendered from a
// copy of deploy/prometheus/rekey-rules.yaml (helm reads only files inside
// the chart); the copy must not drift from the file promtool tests.
func TestChartRulesAreTheRules(t *testing.T) {
	rules := read(t, "deploy/prometheus/rekey-rules.yaml")
	chart := read(t, "deploy/helm/rekey/files/rekey-rules.yaml")
	if rules != chart {
		t.Fatal("deploy/helm/rekey/files/rekey-rules.yaml differs from deploy/prometheus/rekey-rules.yaml; copy it:\n" +
			"  cp deploy/prometheus/rekey-rules.yaml deploy/helm/rekey/files/rekey-rules.yaml")
	}
}
