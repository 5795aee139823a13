package prometheus_test

import (
	"context"
	"encoding/base64"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/testing/testenv"
	promsrc "github.com/rekeyhq/rekey/traffic/prometheus"
)

// The 401 rate of the retired credential, by name, as a user would write it.
const (
	rateQuery = `sum(rate(kubeadapt_requests_total{key_name="{{promql .OldName}}",code="401"}[{{.Window}}]))`
	// zero, not empty, once the key is seen at all; empty for a wrong name.
	seenQuery = `(sum(rate(kubeadapt_requests_total{key_name="{{promql .OldName}}",code="401"}[{{.Window}}]))` +
		` or sum(rate(kubeadapt_requests_total{key_name="{{promql .OldName}}"}[{{.Window}}])) * 0)`
	// fails to execute (HTTP 422): two series on the right match one on the left.
	manyToMany = `vector(1) + on() (label_replace(vector(1), "b", "1", "", "") or label_replace(vector(1), "b", "2", "", ""))`
)

// TestAgainstPrometheus runs the source against a real Prometheus 2.42
// scraping the Kubeadapt stand-in every 200ms. The subtests share the
// server and run in order: they follow one key from first use to
// revocation, then take Prometheus down.
func TestAgainstPrometheus(t *testing.T) {
	ka := newKubeadapt(t)
	prom := testenv.Prometheus(t, testenv.PromOptions{Targets: []string{ka.host}, ScrapeInterval: 200 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := prom.WaitUp(ctx); err != nil {
		t.Fatal(err)
	}

	oldID, oldSecret := ka.key(t, "billing-v1")
	newID, _ := ka.key(t, "billing-v2")
	q := rotator.TrafficQuery{Key: "billing", OldID: oldID, NewID: newID, OldName: "billing-v1", NewName: "billing-v2", Since: time.Now()}
	src := newSource(t, cfgFor(prom.Addr, rateQuery, 2*time.Second))

	// The consumer uses the old key: its code="200" series exists, not yet
	// a code="401" one.
	ka.call(t, oldSecret, 3, http.StatusOK)
	eventually(t, 5*time.Second, "200s scraped", func() (bool, string) {
		s, err := prom.Query(ctx, `rate(kubeadapt_requests_total{key_name="billing-v1",code="200"}[2s])`)
		return err == nil && len(s) == 1, "no rate yet"
	})

	t.Run("no series before the first 401 is an error, not zero", func(t *testing.T) {
		_, err := read(src, q)
		wantRetryable(t, err, "no series matched")
	})
	t.Run("empty_is_zero reads no series as zero", func(t *testing.T) {
		c := cfgFor(prom.Addr, rateQuery, 2*time.Second)
		c.EmptyIsZero = true
		r, err := read(newSource(t, c), q)
		if err != nil || r.Value != 0 || !strings.Contains(r.Detail, "no series matched, reported as zero") {
			t.Fatalf("got %+v, %v; want zero with a detail saying so", r, err)
		}
	})
	t.Run("zero before any 401 when the key is seen", func(t *testing.T) {
		qq := q
		qq.Query = seenQuery
		r, err := read(src, qq)
		if err != nil || r.Value != 0 {
			t.Fatalf("got %+v, %v; want a zero reading", r, err)
		}
		if !strings.Contains(r.Detail, `key_name="billing-v1"`) || !strings.Contains(r.Detail, "1 series, sum 0") {
			t.Errorf("detail %q lacks the query or the series count", r.Detail)
		}
		if time.Since(r.At) > 10*time.Second || time.Until(r.At) > 10*time.Second {
			t.Errorf("reading time %s is not Prometheus' now", r.At)
		}
	})

	// Revoked: every use of the old key now answers 401. The consumer
	// keeps retrying: its first 401 creates the code="401" series, which
	// rate() cannot see (Prometheus 2 has no sample before a series' first),
	// the next ones are the increase.
	ka.revoke(t, oldID)
	ka.fail401(t, prom, oldSecret, "billing-v1")

	t.Run("401s show within a 5s rate window", func(t *testing.T) {
		qq := q
		qq.Query = `sum(rate(kubeadapt_requests_total{key_name="{{promql .OldName}}",code="401"}[5s]))`
		eventually(t, 5*time.Second, "rate > 0", func() (bool, string) {
			r, err := read(src, qq)
			if err != nil {
				return false, err.Error()
			}
			return r.Value > 0, r.Detail
		})
	})
	t.Run("back to zero once the 401s stop", func(t *testing.T) {
		eventually(t, 10*time.Second, "rate == 0", func() (bool, string) {
			r, err := read(src, q)
			if err != nil {
				return false, err.Error()
			}
			return r.Value == 0, r.Detail
		})
	})
	t.Run("names are escaped", func(t *testing.T) {
		testEscaping(t, ka, prom, src)
	})
	t.Run("results", func(t *testing.T) {
		testResults(t, prom, src, q)
	})
	t.Run("an execution error is retried for a grace, then asks a human", func(t *testing.T) {
		testExecutionGrace(t, prom, q)
	})
	t.Run("example queries are valid PromQL", func(t *testing.T) {
		testExampleQueries(t, prom, q)
	})
	t.Run("credentials through a proxy", func(t *testing.T) {
		testAuthProxy(t, prom)
	})
	t.Run("outages are retryable errors", func(t *testing.T) {
		testOutages(t, prom)
	})
}

// testEscaping creates keys whose names are PromQL injections, makes them
// answer 401s and checks that each name is matched literally: the query
// reads the key's own rate, and an unknown evil name reads "no series", not
// the constant its injection would produce.
func testEscaping(t *testing.T, ka *kubeadaptEnv, prom *testenv.PrometheusServer, src *promsrc.Source) {
	evil := map[string]struct {
		name string
		// injected is the query a naive template would build for an
		// unknown name; it answers a constant zero.
		injected string
	}{
		"closes the selector": {
			name:     `nobody"}[2s])) or vector(0) #`,
			injected: `sum(rate(kubeadapt_requests_total{key_name="nobody"}[2s])) or vector(0) #",code="401"}[2s]))`,
		},
		"from the brief": {name: `"} or vector(0) #`},
		"backslash":      {name: `x\"} or vector(0) #`},
		"single quote":   {name: `it's'} or vector(0) #`},
	}
	ctx := context.Background()
	for label, tc := range evil {
		t.Run(label, func(t *testing.T) {
			if tc.injected != "" {
				s, err := prom.Query(ctx, tc.injected)
				if err != nil || len(s) != 1 || s[0].Value != 0 {
					t.Fatalf("the injection should read a constant zero: %v, %v", s, err)
				}
			}
			unknown := rotator.TrafficQuery{Key: "evil", OldName: "unknown-" + tc.name}
			if _, err := read(src, unknown); err == nil || !strings.Contains(err.Error(), "no series matched") {
				t.Fatalf("unknown evil name: %v, want no series matched", err)
			}
			id, secret := ka.key(t, tc.name)
			ka.revoke(t, id)
			ka.fail401(t, prom, secret, tc.name)
			own := rotator.TrafficQuery{Key: "evil", OldName: tc.name, OldID: id}
			own.Query = `sum(rate(kubeadapt_requests_total{key_name="{{promql .OldName}}",code="401"}[5s]))`
			eventually(t, 5*time.Second, "the evil key's own 401s", func() (bool, string) {
				r, err := read(src, own)
				if err != nil {
					return false, err.Error()
				}
				return r.Value > 0, r.Detail
			})
		})
	}
}

// testExecutionGrace: Prometheus answers 422 both for a query that cannot
// run and, while its storage closes, for any query; the first is broken
// for good, the second clears. A run of 422s is retryable until it has
// lasted ExecutionGrace, then permanent; an answer in between starts over,
// and each key and question has its own run.
func testExecutionGrace(t *testing.T, prom *testenv.PrometheusServer, q rotator.TrafficQuery) {
	src := newSource(t, cfgFor(prom.Addr, rateQuery, 2*time.Second))
	now := time.Now()
	promsrc.SetClock(src, func() time.Time { return now })
	broken, other, fine := q, q, q
	broken.Query, other.Query, fine.Query = manyToMany, manyToMany, `vector(0)`
	other.Question = rotator.OldKeyUse

	_, err := read(src, broken)
	wantRetryable(t, err, "HTTP 422 execution")
	now = now.Add(promsrc.ExecutionGrace - time.Second)
	_, err = read(src, broken)
	wantRetryable(t, err, "retrying for up to")
	_, err = read(src, other) // another question's run starts now
	wantRetryable(t, err, "HTTP 422 execution")
	now = now.Add(time.Second)
	_, err = read(src, broken)
	wantPermanent(t, err, rotator.ReasonInvalid, "failing for 1m0s")

	if _, err := read(src, fine); err != nil { // an answer for the key and question forgets the run
		t.Fatal(err)
	}
	_, err = read(src, broken)
	wantRetryable(t, err, "HTTP 422 execution")
	now = now.Add(promsrc.ExecutionGrace - time.Second)
	_, err = read(src, broken) // 59s since the answer
	wantRetryable(t, err, "HTTP 422 execution")
	_, err = read(src, other) // the answer was not for it: 60s
	wantPermanent(t, err, rotator.ReasonInvalid, "failing for 1m0s")
}

// testResults checks how answers become readings, on queries that need no
// scraped data.
func testResults(t *testing.T, prom *testenv.PrometheusServer, src *promsrc.Source, q rotator.TrafficQuery) {
	tests := map[string]struct {
		query     string
		want      float64
		detail    string
		permanent rotator.Reason // "": retryable
		err       string
	}{
		"vector summed":  {query: `label_replace(vector(1.5), "a", "x", "", "") or label_replace(vector(2), "a", "y", "", "")`, want: 3.5, detail: "2 series, sum 3.5"},
		"scalar":         {query: `scalar(vector(0.25))`, want: 0.25, detail: "scalar 0.25"},
		"scalar zero":    {query: `0`, want: 0, detail: "scalar 0"},
		"templated":      {query: `count_values("w", vector({{.Since}})) * 0 + {{len .Window}}`, want: 2, detail: "1 series, sum 2"},
		"empty":          {query: `vector(1) > 2`, err: "no series matched"},
		"NaN":            {query: `0/0`, permanent: rotator.ReasonInvalid, err: "value is NaN"},
		"NaN in vector":  {query: `vector(0)/0`, permanent: rotator.ReasonInvalid, err: "value is NaN"},
		"Inf":            {query: `1/0`, permanent: rotator.ReasonInvalid, err: "value is +Inf"},
		"negative":       {query: `vector(-1)`, permanent: rotator.ReasonInvalid, err: "negative"},
		"range":          {query: `kubeadapt_requests_total[10s]`, permanent: rotator.ReasonInvalid, err: `result type "matrix"`},
		"string":         {query: `"zero"`, permanent: rotator.ReasonInvalid, err: `result type "string"`},
		"syntax error":   {query: `sum(rate(kubeadapt_requests_total[5s])`, permanent: rotator.ReasonInvalid, err: "HTTP 400 bad_data"},
		"execution":      {query: manyToMany, err: "HTTP 422 execution"}, // permanent after ExecutionGrace, see TestExecutionErrorGrace
		"template error": {query: `x{a="{{promql .Nope}}"}`, permanent: rotator.ReasonInvalid, err: "render template"},
		"unescaped":      {query: `x{a="{{.OldName}}"}`, permanent: rotator.ReasonInvalid, err: "drain.query: {{.OldName}} prints a value unescaped"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			qq := q
			qq.Query = tc.query
			r, err := read(src, qq)
			switch {
			case tc.err == "":
				if err != nil || r.Value != tc.want || !strings.Contains(r.Detail, tc.detail) {
					t.Fatalf("got %+v, %v; want %g with detail %q", r, err, tc.want, tc.detail)
				}
				if math.IsNaN(r.Value) || r.At.IsZero() {
					t.Errorf("bad reading %+v", r)
				}
			case tc.permanent != "":
				wantPermanent(t, err, tc.permanent, tc.err)
			default:
				wantRetryable(t, err, tc.err)
			}
		})
	}
	t.Run("no query at all", func(t *testing.T) {
		s := newSource(t, cfgFor(prom.Addr, "", 0))
		_, err := read(s, rotator.TrafficQuery{Key: "k"})
		wantPermanent(t, err, rotator.ReasonInvalid, "no query: set drain.query")
	})
}

// testExampleQueries runs every query of examples/traffic against the real
// server: the metrics do not exist here, so each must answer (zero or "no
// series matched"), never a syntax or execution error.
func testExampleQueries(t *testing.T, prom *testenv.PrometheusServer, q rotator.TrafficQuery) {
	sources, queries := exampleTraffic(t, "prometheus")
	for file, ms := range sources {
		for i, m := range ms {
			cfg, err := decodeExample(m)
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			// Here, without the example's credentials and TLS settings.
			cfg.URL, cfg.CAFile, cfg.BearerTokenFile, cfg.BasicAuth = prom.Addr, "", "", promsrc.BasicAuth{}
			src := newSource(t, cfg)
			for j, text := range append([]string{"", ""}, queries[file]...) {
				qq := q
				qq.Query = text
				if j == 1 {
					qq.Question = rotator.OldKeyUse // the source's old_key_query
				}
				if text == "" && (j == 0 && cfg.Query == "" || j == 1 && cfg.OldKeyQuery == "") {
					continue
				}
				r, err := read(src, qq)
				if err != nil && !strings.Contains(err.Error(), "no series matched") {
					t.Errorf("%s: source %d, query %q: %v", file, i, text, err)
				} else if err == nil && r.Value != 0 {
					t.Errorf("%s: source %d, query %q: %+v, want zero or empty", file, i, text, r)
				}
			}
		}
	}
}

// testAuthProxy puts an authenticating reverse proxy in front of Prometheus
// and checks that each credential style is sent, and refused credentials
// are a permanent auth error that quotes neither the token nor the page.
func testAuthProxy(t *testing.T, prom *testenv.PrometheusServer) {
	const token, password = "prom-token-0123456789", "prom-password-9876543210"
	target, _ := url.Parse(prom.Addr)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	var seen []http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		auth := r.Header.Get("Authorization")
		basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("reader:"+password))
		if !strings.HasPrefix(r.URL.Path, "/prom/") || (auth != "Bearer "+token && auth != basic) {
			http.Error(w, "denied: you sent "+auth, http.StatusUnauthorized)
			return
		}
		r.URL.Path = strings.TrimPrefix(r.URL.Path, "/prom")
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PROM_TOKEN", token)
	t.Setenv("PROM_PASSWORD", password)
	t.Setenv("PROM_WRONG", "wrong-token-000")

	tests := map[string]struct {
		edit   func(*promsrc.Config)
		denied bool
	}{
		"bearer from env":  {edit: func(c *promsrc.Config) { c.BearerTokenEnv = "PROM_TOKEN" }},
		"bearer from file": {edit: func(c *promsrc.Config) { c.BearerTokenFile = file }},
		"basic auth": {edit: func(c *promsrc.Config) {
			c.BasicAuth = promsrc.BasicAuth{Username: "reader", PasswordEnv: "PROM_PASSWORD"}
		}},
		"wrong token": {edit: func(c *promsrc.Config) { c.BearerTokenEnv = "PROM_WRONG" }, denied: true},
		"no token":    {edit: func(*promsrc.Config) {}, denied: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			mu.Lock()
			seen = nil
			mu.Unlock()
			c := cfgFor(srv.URL+"/prom", "vector(0)", 0)
			c.Headers = map[string]string{"X-Scope-OrgID": "team-a"}
			tc.edit(&c)
			r, err := read(newSource(t, c, token, password), rotator.TrafficQuery{Key: "k"})
			if tc.denied {
				wantPermanent(t, err, rotator.ReasonAuth, "HTTP 401 Unauthorized")
				if strings.Contains(err.Error(), "denied") || strings.Contains(err.Error(), "wrong-token") {
					t.Errorf("error quotes the proxy's page or the token: %v", err)
				}
			} else if err != nil || r.Value != 0 {
				t.Fatalf("got %+v, %v; want zero through the proxy", r, err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seen) != 1 || seen[0].Get("X-Scope-Orgid") != "team-a" {
				t.Errorf("proxy saw %v, want one request with X-Scope-OrgID", seen)
			}
		})
	}
}

// testOutages pauses and stops Prometheus: every failure is an error the
// engine retries, never a reading, and the source recovers with the server.
func testOutages(t *testing.T, prom *testenv.PrometheusServer) {
	c := cfgFor(prom.Addr, "vector(0)", 0)
	c.Timeout = 500 * time.Millisecond
	src := newSource(t, c)
	q := rotator.TrafficQuery{Key: "k"}
	ok := func(t *testing.T) {
		t.Helper()
		eventually(t, 10*time.Second, "Prometheus answers again", func() (bool, string) {
			r, err := read(src, q)
			if err != nil {
				return false, err.Error()
			}
			return r.Value == 0, r.Detail
		})
	}
	ok(t)

	if err := prom.Pause(); err != nil {
		t.Fatal(err)
	}
	// SIGSTOP reaches every thread a moment after kill returns: poll.
	var err error
	var took time.Duration
	for deadline := time.Now().Add(5 * time.Second); err == nil && time.Now().Before(deadline); {
		start := time.Now()
		_, err = read(src, q)
		took = time.Since(start)
	}
	if resumeErr := prom.Resume(); resumeErr != nil {
		t.Fatal(resumeErr)
	}
	wantRetryable(t, err, "Client.Timeout")
	if rotator.ReasonOf(err) != rotator.ReasonTransient || took > 3*time.Second {
		t.Errorf("paused: reason %s after %s, want transient after about the 500ms timeout", rotator.ReasonOf(err), took)
	}
	ok(t)

	if err := prom.Stop(); err != nil {
		t.Fatal(err)
	}
	_, err = read(src, q)
	wantRetryable(t, err, "connection refused")
	if rotator.ReasonOf(err) != rotator.ReasonTransient {
		t.Errorf("stopped: reason %s, want transient", rotator.ReasonOf(err))
	}
	if err := prom.Start(); err != nil {
		t.Fatal(err)
	}
	ok(t)
}
