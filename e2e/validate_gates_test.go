package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// `rekey validate` (the real binary) states what each drain gate proves:
// on config.example.yaml, that its demo gate observes nothing; on a gate
// that sees only 401s without a declared reload interval, a warning naming
// the key and the consequence — and neither fails validation.
func TestValidateSaysWhatGatesCannotSee(t *testing.T) {
	t.Parallel()
	only401 := filepath.Join(t.TempDir(), "rekey.yaml")
	writeFile(t, only401, `
issuers: [{name: rnd, type: random}]
sinks: [{name: files, type: file, dir: `+filepath.Join(t.TempDir(), "secrets")+`}]
traffic: [{name: prom, type: prometheus, url: "http://127.0.0.1:9", query: 'sum(rate(req{code="401"}[1m]))'}]
keys:
  - name: payments
    issuer: rnd
    sinks: [{sink: files}]
    drain: {source: prom, quiet_period: 45s, max_wait: 1h}
`)
	for cfg, want := range map[string][]string{
		"../config.example.yaml": {"valid", "drain gate of kubeadapt-demo: observes nothing (fixed)", "WARNING: kubeadapt-demo: the drain gate cannot see old-key use; consumers that reload slower than 30s will get 401s"},
		only401:                  {"valid", "drain gate of payments: sees only failed authentication (prom)", "WARNING: payments: the drain gate cannot see old-key use; consumers that reload slower than 45s will get 401s: declare drain.consumers_reload_within"},
	} {
		cmd := exec.Command(binary, "validate", "-c", cfg)
		cmd.Env = append(os.Environ(), "KUBEADAPT_ADMIN_TOKEN=x")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("validate %s: %v\n%s", cfg, err, out)
		}
		for _, w := range want {
			if !strings.Contains(string(out), w) {
				t.Errorf("validate %s lacks %q:\n%s", cfg, w, out)
			}
		}
	}
}
