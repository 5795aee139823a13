package e2e

import (
	"bytes"
	"testing"
	"text/template"
	"time"
)

// zdAttestSecret signs consumer attestations in the zero-downtime stack.
const zdAttestSecret = "whsec_YXR0ZXN0YXRpb25zLW9mLXRoZS10ZXN0LWNvbnN1bWVycw=="

// The recommended drain gates (docs/ZERO-DOWNTIME.md): each asks both
// questions — is the old key still used? does the new key fail? — of
// sources that can answer them. Sections are templates with [[ ]] (the
// PromQL inside keeps rekey's own {{ }}).
var recommendedGates = map[string]*zdGate{
	// Prometheus scraping the API's per-key counters: old-key use is the
	// rate of any request with the old key's id; failures are the 401s of
	// the new key (zero, not empty, once the verify probe used it) and of
	// unidentifiable keys.
	"prometheus": {Sections: `traffic:
  - name: prom
    type: prometheus
    url: [[.Prom]]
    window: 2s
    timeout: 1s
    old_key_query: '` + promOldKeyUse + `'
    query: '` + promNewKeyFailures + `'`,
		Drain: "    source: prom\n    require: [old_key_use, new_key_failures]"},
	// The API's own counters, read directly.
	"kubeadapt": {Sections: `traffic:
  - name: ka
    type: kubeadapt
    url: [[.KA]]/metrics
    timeout: 1s`,
		Drain: "    source: ka\n    require: [old_key_use, new_key_failures]"},
	// Consumers attest which generation they hold; Prometheus sees 401s.
	"consumers": {Attest: true, Sections: `traffic:
  - name: attested
    type: consumers
    horizon: 1h
  - name: prom
    type: prometheus
    url: [[.Prom]]
    window: 2s
    timeout: 1s
    query: '` + promNewKeyFailures + `'
webhooks:
  - name: consumers
    type: consumer
    secret_file: [[.W.Dir]]/consumer-secret`,
		Drain: "    sources: [attested, prom]\n    require: [old_key_use, new_key_failures]"},
}

const (
	promOldKeyUse = `sum(rate(kubeadapt_requests_total{key_id="{{promql .OldID}}"}[{{.Window}}]))`
	// A code="401" series exists only after the first 401: "or … * 0"
	// turns the key's other series into a real zero.
	promNewKeyFailures = `(sum(rate(kubeadapt_requests_total{key_id="{{promql .NewID}}",code="401"}[{{.Window}}]))` +
		` or sum(rate(kubeadapt_requests_total{key_id="{{promql .NewID}}"}[{{.Window}}])) * 0)` +
		` + (sum(rate(kubeadapt_requests_total{key_id="unknown",code="401"}[{{.Window}}])) or vector(0))`
)

// expandGate renders a gate's sections over the stack.
func expandGate(t *testing.T, text string, data any) string {
	t.Helper()
	tm, err := template.New("gate").Delims("[[", "]]").Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := tm.Execute(&b, data); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// attestArgs are the flags of a consumer that attests to the daemon as name.
func (s *zdStack) attestArgs(name string) []string {
	return []string{"-attest-url", "http://" + s.w.Addr() + "/v1/consumers/attest", "-attest-secret-env", "ATTEST_SECRET",
		"-attest-key", zdKey, "-attest-name", name}
}

// slowConsumer starts a consumer reading the file sink every reload
// (0: once), attesting when the gate reads attestations.
func (s *zdStack) slowConsumer(name string, reload time.Duration) *consumerProc {
	args := s.fileSource()
	var env []string
	if s.opts.Gate != nil && s.opts.Gate.Attest {
		args = append(args, s.attestArgs(name)...)
		env = append(env, "ATTEST_SECRET="+zdAttestSecret)
	}
	return s.startConsumer(name, reload, args, env...)
}
