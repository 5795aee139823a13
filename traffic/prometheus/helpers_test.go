package prometheus_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rekeyhq/rekey/config"
	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/testing/kubeadapt"
	"github.com/rekeyhq/rekey/testing/testenv"
	promsrc "github.com/rekeyhq/rekey/traffic/prometheus"
)

// syncBuffer collects log output from concurrent goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// newSource builds a source whose logs are checked for secrets when t ends.
func newSource(t *testing.T, cfg promsrc.Config, secrets ...string) *promsrc.Source {
	t.Helper()
	logs := &syncBuffer{}
	s, err := promsrc.New(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		for _, sec := range secrets {
			if strings.Contains(logs.String(), sec) {
				t.Errorf("logs leak a secret:\n%s", logs)
			}
		}
	})
	return s
}

// cfgFor is a config for url with query and a window.
func cfgFor(url, query string, window time.Duration) promsrc.Config {
	c := promsrc.DefaultConfig()
	c.URL, c.Query, c.Window = url, query, window
	return c
}

// read asks s about q with a short deadline.
func read(s *promsrc.Source, q rotator.TrafficQuery) (rotator.Reading, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.Unauthorized(ctx, q)
}

// eventually polls cond every 100ms until it holds or timeout passes; the
// failure reports cond's last explanation.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %s", what, timeout, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// wantRetryable fails unless err is a non-permanent error containing want.
func wantRetryable(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want a retryable one containing %q", want)
	}
	if rotator.IsPermanent(err) {
		t.Errorf("error is permanent, want retryable: %v", err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
}

// wantPermanent fails unless err is permanent with reason and contains want.
func wantPermanent(t *testing.T, err error, reason rotator.Reason, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want a permanent %s one containing %q", reason, want)
	}
	if !rotator.IsPermanent(err) || rotator.ReasonOf(err) != reason {
		t.Errorf("error is permanent=%v reason=%s, want permanent %s: %v", rotator.IsPermanent(err), rotator.ReasonOf(err), reason, err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
}

// kubeadaptEnv is the Kubeadapt stand-in: it counts data API requests per
// key and status in kubeadapt_requests_total.
type kubeadaptEnv struct {
	s    *kubeadapt.Server
	url  string
	host string // host:port, a scrape target
}

func newKubeadapt(t *testing.T) *kubeadaptEnv {
	t.Helper()
	s := kubeadapt.New(kubeadapt.Options{AdminToken: "test-admin"})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	u, _ := url.Parse(ts.URL)
	return &kubeadaptEnv{s: s, url: ts.URL, host: u.Host}
}

// key creates an API key named name and returns its id and secret.
func (e *kubeadaptEnv) key(t *testing.T, name string) (string, string) {
	t.Helper()
	k, secret, err := e.s.CreateKey(kubeadapt.KeyRequest{Name: name, Scopes: []string{kubeadapt.ScopeClustersRead}})
	if err != nil {
		t.Fatalf("create key %q: %v", name, err)
	}
	return k.ID, secret
}

func (e *kubeadaptEnv) revoke(t *testing.T, id string) {
	t.Helper()
	if _, err := e.s.Revoke(id); err != nil {
		t.Fatalf("revoke %s: %v", id, err)
	}
}

// call makes n data API requests with secret and checks their status.
func (e *kubeadaptEnv) call(t *testing.T, secret string, n, want int) {
	t.Helper()
	for range n {
		req, _ := http.NewRequest(http.MethodGet, e.url+"/v1/clusters", nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("data API: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("data API: status %d, want %d", resp.StatusCode, want)
		}
	}
}

// fail401 makes a revoked key's consumer fail like a stale client that
// keeps retrying: one 401 creates the key's code="401" series, and once
// Prometheus has scraped it, more 401s increase it.
func (e *kubeadaptEnv) fail401(t *testing.T, prom *testenv.PrometheusServer, secret, name string) {
	t.Helper()
	e.call(t, secret, 1, http.StatusUnauthorized)
	sel := `kubeadapt_requests_total{key_name="` + promsrc.Escape(name) + `",code="401"}`
	eventually(t, 5*time.Second, "the 401 series scraped", func() (bool, string) {
		s, err := prom.Query(context.Background(), sel)
		if err != nil {
			return false, err.Error()
		}
		return len(s) == 1, "not yet"
	})
	e.call(t, secret, 10, http.StatusUnauthorized)
}

// exampleTraffic returns the settings of every traffic source of type typ
// in examples/traffic/*.yaml, and the drain queries of the keys bound to
// them, by file.
func exampleTraffic(t *testing.T, typ string) (sources map[string][]map[string]any, queries map[string][]string) {
	t.Helper()
	files, err := filepath.Glob("../../examples/traffic/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples/traffic/*.yaml: %v", err)
	}
	sources, queries = map[string][]map[string]any{}, map[string][]string{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Traffic []map[string]any `yaml:"traffic"`
			Keys    []struct {
				Drain struct {
					Source      string   `yaml:"source"`
					Sources     []string `yaml:"sources"`
					Query       string   `yaml:"query"`
					OldKeyQuery string   `yaml:"old_key_query"`
				} `yaml:"drain"`
			} `yaml:"keys"`
		}
		if err := yaml.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		names := map[string]bool{}
		for _, m := range doc.Traffic {
			if m["type"] != typ {
				continue
			}
			names[m["name"].(string)] = true
			delete(m, "name")
			delete(m, "type")
			sources[filepath.Base(f)] = append(sources[filepath.Base(f)], m)
		}
		for _, k := range doc.Keys {
			bound := names[k.Drain.Source]
			for _, n := range k.Drain.Sources {
				bound = bound || names[n]
			}
			for _, text := range []string{k.Drain.Query, k.Drain.OldKeyQuery} {
				if bound && text != "" {
					queries[filepath.Base(f)] = append(queries[filepath.Base(f)], text)
				}
			}
		}
	}
	return sources, queries
}

// decodeExample decodes one example's settings as app does.
func decodeExample(m map[string]any) (promsrc.Config, error) {
	cfg := promsrc.DefaultConfig()
	if err := config.Decode(m, &cfg, "traffic[0]"); err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, errors.Join(err)
	}
	return cfg, nil
}
