package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// PrometheusBinEnv names the prometheus binary to run; without it testenv
// looks on $PATH.
const PrometheusBinEnv = "REKEY_PROMETHEUS_BIN"

// PromOptions configures the Prometheus server started by Prometheus.
type PromOptions struct {
	// Targets are host:port pairs scraped at /metrics as job Job.
	Targets []string
	// ScrapeInterval is the scrape (and rule evaluation) interval; 1s when
	// zero. Prometheus accepts intervals down to 1ms; 200ms works well.
	ScrapeInterval time.Duration
	// Job is the job label of the targets; "rekey" when empty.
	Job string
}

// PrometheusServer is a Prometheus 2.42 server scraping PromOptions.Targets.
// Its TSDB lives in the test's temporary directory.
type PrometheusServer struct {
	Addr string // http://127.0.0.1:PORT
	Port int
	Log  string // path of the server's log file

	targets []string
	proc    *process
}

// Prometheus starts a Prometheus server for t and stops it when t ends. It
// returns once the server is ready, which is before the first scrape:
// Prometheus refreshes its targets only every 5 s, so call WaitUp before
// asserting on scraped data.
func Prometheus(t testing.TB, opts PromOptions) *PrometheusServer {
	t.Helper()
	bin, err := findBinary("prometheus", PrometheusBinEnv, "prometheus")
	if err != nil {
		fail(t, err)
		return nil
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, promConfig(opts), 0o644); err != nil {
		t.Fatalf("testenv: prometheus: write config: %v", err)
	}
	var p *PrometheusServer
	start := time.Now()
	proc, err := launch(func(port int) (*process, error) {
		p = &PrometheusServer{
			Addr:    fmt.Sprintf("http://127.0.0.1:%d", port),
			Port:    port,
			Log:     filepath.Join(dir, "prometheus.log"),
			targets: append([]string(nil), opts.Targets...),
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		ready := p.Addr + "/-/ready"
		return &process{
			name: "prometheus",
			path: bin,
			args: []string{
				"--config.file=" + cfgPath,
				"--storage.tsdb.path=" + filepath.Join(dir, "data"),
				"--web.listen-address=" + addr,
			},
			dir:          dir,
			logPath:      p.Log,
			addr:         addr,
			ready:        func(ctx context.Context) error { return httpOK(ctx, ready) },
			readyTimeout: 30 * time.Second,
		}, nil
	})
	if err != nil {
		fail(t, err)
		return nil
	}
	p.proc = proc
	t.Cleanup(func() { proc.cleanup(t) })
	t.Logf("testenv: prometheus %s ready in %s (log %s)", p.Addr, time.Since(start).Round(time.Millisecond), p.Log)
	return p
}

func promConfig(opts PromOptions) []byte {
	interval := opts.ScrapeInterval
	if interval <= 0 {
		interval = time.Second
	}
	job := opts.Job
	if job == "" {
		job = "rekey"
	}
	ms := strconv.FormatInt(interval.Milliseconds(), 10) + "ms"
	targets, _ := json.Marshal(opts.Targets) // a JSON list is a YAML flow sequence
	if len(opts.Targets) == 0 {
		targets = []byte("[]")
	}
	jobName, _ := json.Marshal(job)
	return fmt.Appendf(nil, `global:
  scrape_interval: %[1]s
  scrape_timeout: %[1]s
  evaluation_interval: %[1]s
scrape_configs:
  - job_name: %[2]s
    static_configs:
      - targets: %[3]s
`, ms, jobName, targets)
}

// Sample is one element of an instant-vector query result.
type Sample struct {
	Metric map[string]string
	Value  float64
}

// Query runs an instant PromQL query and returns its vector result.
func (p *PrometheusServer) Query(ctx context.Context, query string) ([]Sample, error) {
	u := p.Addr + "/api/v1/query?" + url.Values{"query": {query}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("testenv: prometheus query %q: %w", query, err)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("testenv: prometheus query %q: %w", query, err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("testenv: prometheus query %q: %s: decode: %w", query, resp.Status, err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("testenv: prometheus query %q: %s: %s", query, resp.Status, body.Error)
	}
	if body.Data.ResultType != "vector" {
		return nil, fmt.Errorf("testenv: prometheus query %q: result type %s, want vector", query, body.Data.ResultType)
	}
	samples := make([]Sample, 0, len(body.Data.Result))
	for _, r := range body.Data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("testenv: prometheus query %q: value %v: %w", query, r.Value[1], err)
		}
		samples = append(samples, Sample{Metric: r.Metric, Value: v})
	}
	return samples, nil
}

// WaitUp polls until `up == 1` for every target, or ctx ends; give ctx a
// deadline (the first scrape comes about 5 s after Prometheus starts).
func (p *PrometheusServer) WaitUp(ctx context.Context) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	down := p.targets
	var queryErr error
	for {
		d, err := p.downTargets(ctx)
		if err == nil && len(d) == 0 {
			return nil
		}
		if err == nil {
			down = d
		}
		queryErr = err
		select {
		case <-ctx.Done():
			if queryErr != nil && ctx.Err() == nil {
				return fmt.Errorf("testenv: prometheus: targets %s not up: %w", strings.Join(down, ", "), queryErr)
			}
			return fmt.Errorf("testenv: prometheus: targets %s not up: %w", strings.Join(down, ", "), ctx.Err())
		case <-tick.C:
		}
	}
}

// downTargets returns the targets whose up sample is missing or not 1.
func (p *PrometheusServer) downTargets(ctx context.Context) ([]string, error) {
	samples, err := p.Query(ctx, "up")
	if err != nil {
		return nil, err
	}
	up := map[string]bool{}
	for _, s := range samples {
		up[s.Metric["instance"]] = s.Value == 1
	}
	var down []string
	for _, target := range p.targets {
		if !up[target] {
			down = append(down, target)
		}
	}
	return down, nil
}

// Stop stops the server and waits until its port is free.
func (p *PrometheusServer) Stop() error { return p.proc.stop() }

// Start starts a stopped server again on the same port. The TSDB is on disk,
// so data scraped before Stop is kept (Prometheus replays its WAL), but
// targets are scraped again only after the 5 s target refresh: call WaitUp.
func (p *PrometheusServer) Start() error { return p.proc.start() }

// Pause freezes the server with SIGSTOP: requests hang and nothing is
// scraped until Resume.
func (p *PrometheusServer) Pause() error { return p.proc.pause() }

// Resume continues a paused server with SIGCONT.
func (p *PrometheusServer) Resume() error { return p.proc.resume() }
