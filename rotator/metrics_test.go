package rotator_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/rekeyhq/rekey/rotator"
)

// withMetrics replaces the env's engine with one that records metrics in a
// fresh registry.
func (e *env) withMetrics(o rotator.MetricsOptions) *prometheus.Registry {
	e.t.Helper()
	reg := prometheus.NewRegistry()
	eng, err := rotator.New(rotator.Options{
		Store: e.store, Keys: []*rotator.Key{e.key}, Notifiers: map[string]rotator.Notifier{"notes": e.notes},
		Clock: e.clock, Backoff: rotator.Backoff{Base: time.Second, Max: time.Minute, Factor: 2},
		Inbound: e.store, State: e.store, Metrics: rotator.NewMetricsWith(reg, o),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { eng.Close(time.Second) })
	e.engine = eng
	return reg
}

// metric returns the value of the series of name with exactly labels (a
// histogram: its sample count), and whether it exists.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				if lp.GetValue() != "" { // an empty label is no label to Prometheus
					got[lp.GetName()] = lp.GetValue()
				}
			}
			if len(got) != len(labels) {
				continue
			}
			for k, v := range labels {
				if got[k] != v {
					continue series
				}
			}
			return value(m), true
		}
	}
	return 0, false
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return 0
}

func wantMetric(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string, want float64) {
	t.Helper()
	if got, ok := metric(t, reg, name, labels); !ok || got != want {
		t.Errorf("%s%v = %g (present %v), want %g", name, labels, got, ok, want)
	}
}

// The counters of what happened to keys are read from the store; the engine
// times every issuer and sink call, and reads the active-rotation,
// pending-approval and key-age gauges from the store; the policy evaluation
// leaves its timestamp.
func TestMetricsFromCommitsCallsAndStore(t *testing.T) {
	e := newEnv(t)
	reg := e.withMetrics(rotator.MetricsOptions{PerKey: true})
	e.bootstrap()
	wantMetric(t, reg, "rekey_credentials_minted_total", map[string]string{"key": "api"}, 1)
	wantMetric(t, reg, "rekey_issuer_call_duration_seconds", map[string]string{"issuer": "fake", "op": "mint", "result": "ok"}, 1)
	wantMetric(t, reg, "rekey_sink_call_duration_seconds", map[string]string{"sink": "mem0", "phase": "staging", "result": "ok"}, 1)

	e.key.Approval = rotator.ApprovalPolicy{Gates: []rotator.Gate{rotator.GateStart}, Approvers: []string{"bob"}}
	e.trigger(rotator.TriggerManual, "")
	e.engine.RunOnce(e.ctx) // holds for approval
	e.clock.Advance(2 * time.Second)
	e.engine.RunOnce(e.ctx) // housekeeping reads it back (at most once a second)
	wantMetric(t, reg, "rekey_rotations_active", map[string]string{"phase": "awaiting_approval", "waiting": "approval"}, 1)
	wantMetric(t, reg, "rekey_approvals_pending", map[string]string{"gate": "start"}, 1)
	wantMetric(t, reg, "rekey_approvals_pending", map[string]string{"gate": "revoke"}, 0)
	if age, ok := metric(t, reg, "rekey_key_age_seconds", map[string]string{"key": "api"}); !ok || age < 0 {
		t.Errorf("key age not read from the store: %g %v", age, ok)
	}

	e.iss.mint = func(rotator.MintRequest) error { return rotator.HTTPStatusError("fake issuer", 503, "unavailable") }
	if err := e.engine.Evaluate(e.ctx); err != nil {
		t.Fatal(err)
	}
	wantMetric(t, reg, "rekey_policy_last_evaluation_timestamp_seconds", nil, float64(e.clock.Now().UnixNano())/1e9)
}

// A failing issuer call is timed with its reason; without per-key labels
// counters keep one series for all keys and the per-key gauges are absent.
func TestMetricsWithoutKeyLabel(t *testing.T) {
	e := newEnv(t)
	reg := e.withMetrics(rotator.MetricsOptions{PerKey: false})
	e.bootstrap()
	wantMetric(t, reg, "rekey_credentials_minted_total", nil, 1)
	if _, ok := metric(t, reg, "rekey_credentials_minted_total", map[string]string{"key": "api"}); ok {
		t.Error("a per-key series exists with metrics_per_key off")
	}
	e.iss.mint = func(rotator.MintRequest) error { return rotator.HTTPStatusError("fake issuer", 503, "unavailable") }
	e.trigger(rotator.TriggerManual, "")
	e.engine.RunOnce(e.ctx)
	wantMetric(t, reg, "rekey_issuer_call_duration_seconds", map[string]string{"issuer": "fake", "op": "mint", "result": "transient"}, 1)
	e.clock.Advance(2 * time.Second) // the gauges are read at most once a second
	e.engine.RunOnce(e.ctx)
	wantMetric(t, reg, "rekey_rotations_active", map[string]string{"phase": "minting", "waiting": "retry_backoff"}, 1)
	if _, ok := metric(t, reg, "rekey_key_age_seconds", map[string]string{"key": "api"}); ok {
		t.Error("rekey_key_age_seconds exported with metrics_per_key off")
	}
}
