package app

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rekeyhq/rekey/testing/kubeadapt"
)

// The manual issuer is a person's, but submit and confirm rely on its verify
// probe: doctor calls it with an obviously invalid key, which must answer
// 401 (the endpoint is reachable and tells a revoked key apart) — ✔ against
// the Kubeadapt-style API; ✘ with a fix naming the YAML path when it is
// unreachable or accepts anything. Before, doctor printed "a person mints and
// revokes: nothing to call" whatever the probe did.
func TestDoctorChecksTheManualIssuersProbe(t *testing.T) {
	ka := kubeadapt.New(kubeadapt.Options{AdminToken: "ka-admin-doctor-0002"})
	if err := ka.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ka.Close() })
	lenient := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "{}") }))
	t.Cleanup(lenient.Close)
	for name, tc := range map[string]struct {
		url     string
		ok      bool
		want    string
		skipped bool
	}{
		"probe judges keys":     {url: ka.URL() + "/v1/clusters", ok: true, want: "verify probe answers 401"},
		"probe unreachable":     {url: "http://127.0.0.1:1/v1/clusters", want: "connection refused"},
		"probe accepts any key": {url: lenient.URL + "/v1/clusters", want: "accepted an obviously invalid key"},
		"no probe":              {ok: true, want: "no verify probe configured", skipped: true},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			verify := ""
			if tc.url != "" {
				verify = fmt.Sprintf("\n    verify: {url: %q, expect: [200]}", tc.url)
			}
			yaml := fmt.Sprintf(`
store: {type: sqlite, path: %[1]s/rekey.db}
issuers:
  - name: dash
    type: manual%[2]s
sinks:
  - {name: files, type: file, dir: %[1]s/secrets}
traffic:
  - {name: fixed, type: fixed}
keys:
  - {name: man, issuer: dash, sinks: [{sink: files}], drain: {source: fixed, quiet_period: 1m}}
`, dir, verify)
			path := filepath.Join(dir, "rekey.yaml")
			if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			rep := Doctor(t.Context(), path, NewLogger(io.Discard, "error"))
			var got *CheckResult
			for i, r := range rep.Results {
				if r.Name == "issuer dash" {
					got = &rep.Results[i]
				}
			}
			if got == nil {
				t.Fatalf("no check of issuer dash: %+v", rep.Results)
			}
			if got.OK != tc.ok || got.Skipped != tc.skipped || !strings.Contains(got.Detail, tc.want) {
				t.Fatalf("issuer dash: ok %v skipped %v %q, want ok %v skipped %v with %q", got.OK, got.Skipped, got.Detail, tc.ok, tc.skipped, tc.want)
			}
			if !tc.ok && (!strings.Contains(got.Fix, "verify.url of issuers[0]") || rep.ExitCode() != DoctorDependency) {
				t.Fatalf("fix %q, exit %d", got.Fix, rep.ExitCode())
			}
		})
	}
}
