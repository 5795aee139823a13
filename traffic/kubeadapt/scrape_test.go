package kubeadapt

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rekeyhq/rekey/config"
	"github.com/rekeyhq/rekey/rotator"
)

// page serves a metrics page the test edits: what a real server shows only
// across restarts or misconfiguration.
type page struct {
	mu      sync.Mutex
	status  int
	body    string
	headers []http.Header
}

func (p *page) set(status int, body string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status, p.body = status, body
}

func (p *page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.headers = append(p.headers, r.Header.Clone())
	if p.status == http.StatusFound {
		w.Header().Set("Location", "http://elsewhere.invalid/metrics")
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	w.WriteHeader(p.status)
	fmt.Fprint(w, p.body)
}

func counterPage(v string) string {
	return "# TYPE kubeadapt_requests_total counter\n" +
		`kubeadapt_requests_total{key_id="key_1",key_name="billing-v1",code="200"} 7` + "\n" +
		`kubeadapt_requests_total{key_id="key_1",key_name="billing-v1",code="401"} ` + v + "\n"
}

func TestPages(t *testing.T) {
	const token = "metrics-token-0123456789"
	t.Setenv("KA_METRICS_TOKEN", token)
	q := rotator.TrafficQuery{Key: "billing", OldID: "key_1", OldName: "billing-v1"}
	tests := map[string]struct {
		first, then string // counter values: baseline, next poll
		status      int    // of the next poll; 200 when zero
		body        string // of the next poll, instead of counterPage(then)
		want        float64
		detail      string
		perm        rotator.Reason // "": retryable when err is set
		err         string
	}{
		"increase":         {first: "10", then: "30", want: 2, detail: "20 401 answers for key_id key_1 (billing-v1) in 10s (2/s)"},
		"reset to zero":    {first: "10", then: "0", err: "counters reset (10 → 0 401 answers"},
		"reset and more":   {first: "10", then: "4", want: 0.4, detail: "counters were reset: a lower bound"},
		"NaN":              {first: "10", then: "NaN", perm: rotator.ReasonInvalid, err: "has value NaN: not a counter"},
		"not the format":   {first: "1", body: "<html>hello</html>", perm: rotator.ReasonInvalid, err: "not the Prometheus text format"},
		"server error":     {first: "1", status: 503, body: "try later", err: "HTTP 503 Service Unavailable"},
		"token refused":    {first: "1", status: 401, body: "you sent " + token, perm: rotator.ReasonAuth, err: "HTTP 401 Unauthorized"},
		"redirect":         {first: "1", status: 302, perm: rotator.ReasonInvalid, err: "redirect not followed"},
		"series vanished":  {first: "1", body: "# TYPE kubeadapt_requests_total counter\nkubeadapt_requests_total{key_id=\"unknown\",key_name=\"\",code=\"401\"} 1\n", err: `no kubeadapt_requests_total series for key_id "key_1"`},
		"untyped is fine":  {first: "1", body: `kubeadapt_requests_total{key_id="key_1",key_name="billing-v1",code="401"} 6` + "\n", want: 0.5, detail: "5 401 answers"},
		"other codes only": {first: "1", body: "# TYPE kubeadapt_requests_total counter\n" + `kubeadapt_requests_total{key_id="key_1",key_name="billing-v1",code="200"} 9` + "\n", err: "counters reset (1 → 0"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := &page{status: 200, body: counterPage(tc.first)}
			srv := httptest.NewServer(p)
			defer srv.Close()
			e := &env{clock: &fakeClock{now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}, url: srv.URL}
			s := e.source(t, func(c *Config) { c.URL = srv.URL + "/custom/metrics"; c.BearerTokenEnv = "KA_METRICS_TOKEN" })
			wantErr(t, s, q, false, "baseline established ("+tc.first+" 401 answers")

			status, body := tc.status, tc.body
			if status == 0 {
				status = 200
			}
			if body == "" {
				body = counterPage(tc.then)
			}
			p.set(status, body)
			e.clock.Advance(10 * time.Second)
			r, err := poll(s, q)
			switch {
			case tc.err == "":
				if err != nil || r.Value != tc.want || !strings.Contains(r.Detail, tc.detail) {
					t.Fatalf("got %+v, %v; want %g with detail %q", r, err, tc.want, tc.detail)
				}
			case err == nil || !strings.Contains(err.Error(), tc.err):
				t.Fatalf("got %+v, %v; want an error containing %q", r, err, tc.err)
			case tc.perm != "" && (!rotator.IsPermanent(err) || rotator.ReasonOf(err) != tc.perm):
				t.Errorf("error %v: want permanent %s", err, tc.perm)
			case tc.perm == "" && rotator.IsPermanent(err):
				t.Errorf("error %v: want retryable", err)
			}
			if err != nil && (strings.Contains(err.Error(), token) || strings.Contains(err.Error(), "hello")) {
				t.Errorf("error quotes the token or the page: %v", err)
			}
			p.mu.Lock()
			defer p.mu.Unlock()
			for _, h := range p.headers {
				if h.Get("Authorization") != "Bearer "+token || !strings.HasPrefix(h.Get("Accept"), "text/plain") {
					t.Errorf("request headers %v", h)
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := map[string]struct {
		edit func(*Config)
		want []string
	}{
		"minimal": {edit: func(*Config) {}},
		"all options": {edit: func(c *Config) {
			c.Match = []string{MatchOldID, MatchUnknown}
			c.Count = CountRequests
			c.BearerTokenFile = "/t"
		}},
		"url required":   {edit: func(c *Config) { c.URL = "" }, want: []string{"url: required"}},
		"url scheme":     {edit: func(c *Config) { c.URL = "unix:///x" }, want: []string{"url: must be an http(s) URL"}},
		"url password":   {edit: func(c *Config) { c.URL = "http://a:b@x/metrics" }, want: []string{"url: must not carry credentials"}},
		"metric":         {edit: func(c *Config) { c.Metric = "9lives" }, want: []string{`metric: "9lives" is not a metric name`}},
		"match":          {edit: func(c *Config) { c.Match = []string{"old_name"} }, want: []string{`match[0]: "old_name": want old_id or unknown`}},
		"count":          {edit: func(c *Config) { c.Count = "401" }, want: []string{`count: "401": want unauthorized or requests`}},
		"timeout":        {edit: func(c *Config) { c.Timeout = -time.Second }, want: []string{"timeout: must not be negative"}},
		"two token refs": {edit: func(c *Config) { c.BearerTokenEnv, c.BearerTokenFile = "A", "/b" }, want: []string{"bearer_token_env: set only one"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := DefaultConfig()
			c.URL = "http://kubeadapt:8089"
			tc.edit(&c)
			err := c.Validate()
			if len(tc.want) == 0 && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("Validate: %v, want %q", err, w)
				}
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c := DefaultConfig()
	c.URL = "http://kubeadapt:8089"
	s, err := New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.url.String() != "http://kubeadapt:8089/metrics" || s.metric != DefaultMetric || !s.matchOld || s.matchUnk || s.countAll || s.emptyIsZero {
		t.Fatalf("defaults: %+v", s)
	}
	c.BearerTokenEnv = "REKEY_TEST_UNSET"
	if _, err := New(c, nil); err == nil || !strings.Contains(err.Error(), "bearer_token: environment variable REKEY_TEST_UNSET is not set") {
		t.Fatalf("New without the token: %v", err)
	}
}

// TestExamples decodes every kubeadapt source in examples/traffic as app does.
func TestExamples(t *testing.T) {
	files, _ := filepath.Glob("../../examples/traffic/*.yaml")
	found := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Traffic []map[string]any `yaml:"traffic"`
		}
		if err := yaml.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for i, m := range doc.Traffic {
			if m["type"] != "kubeadapt" {
				continue
			}
			found++
			delete(m, "name")
			delete(m, "type")
			c := DefaultConfig()
			if err := config.Decode(m, &c, fmt.Sprintf("traffic[%d]", i)); err != nil {
				t.Errorf("%s: %v", f, err)
				continue
			}
			if err := c.Validate(); err != nil {
				t.Errorf("%s: %v", f, err)
			}
		}
	}
	if found == 0 {
		t.Fatal("no kubeadapt source in examples/traffic/*.yaml")
	}
}
