package kubeadapt_test

import (
	"bufio"
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/rekeyhq/rekey/testing/kubeadapt"
)

// scrape returns the samples of /metrics, keyed by "name{labels}".
func scrape(t *testing.T, e *env) map[string]string {
	t.Helper()
	r := e.do(http.MethodGet, "/metrics", "", nil)
	if r.code != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("GET /metrics = %d %q", r.code, r.header.Get("Content-Type"))
	}
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("bad sample line %q", line)
		}
		out[line[:i]] = line[i+1:]
	}
	return out
}

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	a := e.mint("exporter", []string{kubeadapt.ScopeClustersRead}, "dev-us-1")
	b := e.mint(`we"ird\name`, []string{kubeadapt.ScopeCostsRead})
	e.mint("idle", []string{kubeadapt.ScopeCostsRead})

	e.get("/v1/clusters", a.Secret)
	e.get("/v1/clusters/dev-us-1", a.Secret)
	e.get("/v1/clusters/prod-eu-1", a.Secret) // 403 cluster
	e.get("/v1/costs", a.Secret)              // 403 scope
	e.get("/v1/costs", b.Secret)
	e.do(http.MethodGet, "/v1/clusters", "", nil)
	e.get("/v1/clusters", "ka_live_short")
	e.get("/v1/clusters", kubeadapt.SecretPrefix+strings.Repeat("z", 32))
	e.admin(http.MethodDelete, "/admin/v1/api-keys/"+a.ID, nil)
	e.get("/v1/clusters", a.Secret)
	e.get("/v1/clusters/dev-us-1", a.Secret)
	e.admin(http.MethodGet, "/admin/v1/api-keys", nil) // admin traffic is not counted
	e.do(http.MethodGet, "/healthz", "", nil)

	want := map[string]string{
		`kubeadapt_requests_total{key_id="` + a.ID + `",key_name="exporter",code="200"}`:           "2",
		`kubeadapt_requests_total{key_id="` + a.ID + `",key_name="exporter",code="403"}`:           "2",
		`kubeadapt_requests_total{key_id="` + a.ID + `",key_name="exporter",code="401"}`:           "2",
		`kubeadapt_requests_total{key_id="` + b.ID + `",key_name="we\"ird\\name",code="200"}`:      "1",
		`kubeadapt_requests_total{key_id="` + kubeadapt.UnknownKeyID + `",key_name="",code="401"}`: "3",
		`kubeadapt_api_keys{status="active"}`:                                                      "2",
		`kubeadapt_api_keys{status="revoked"}`:                                                     "1",
	}
	got := scrape(t, e)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d samples, want %d: %v", len(got), len(want), got)
	}

	accessor := map[string]struct {
		keyID string
		code  int
		want  int
	}{
		"a 200":       {a.ID, 200, 2},
		"a 401":       {a.ID, 401, 2},
		"a 403":       {a.ID, 403, 2},
		"b 200":       {b.ID, 200, 1},
		"b 401":       {b.ID, 401, 0},
		"unknown 401": {kubeadapt.UnknownKeyID, 401, 3},
		"no such key": {"key_none", 200, 0},
	}
	for name, tt := range accessor {
		t.Run(name, func(t *testing.T) {
			if got := e.s.Requests(tt.keyID, tt.code); got != tt.want {
				t.Errorf("Requests(%s, %d) = %d, want %d", tt.keyID, tt.code, got, tt.want)
			}
		})
	}
}

func TestMetricsEmptyAndMethods(t *testing.T) {
	e := newEnv(t)
	got := scrape(t, e)
	if got[`kubeadapt_api_keys{status="active"}`] != "0" || got[`kubeadapt_api_keys{status="revoked"}`] != "0" || len(got) != 2 {
		t.Errorf("empty server metrics = %v", got)
	}
	if r := e.do(http.MethodPost, "/metrics", "", nil); r.code != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics = %d", r.code)
	}
	if r := e.do(http.MethodHead, "/metrics", "", nil); r.code != http.StatusOK || len(r.body) != 0 {
		t.Errorf("HEAD /metrics = %d, %d bytes", r.code, len(r.body))
	}
}
