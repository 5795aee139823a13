// Command rekey-loadgen sends signed generic exposure reports
// (POST /v1/events/exposure, Standard Webhooks signature) to a running rekey
// daemon at a fixed rate for a fixed time, and reports what the sender saw:
// how many were accepted, refused or lost in transit, and the latency
// percentiles from each report's scheduled send time to its answer (an
// open-loop measure: a slow answer does not delay the next report, so a
// stall shows in the percentiles instead of hiding).
//
//	REKEY_EXPOSURE_SECRET=whsec_… rekey-loadgen \
//	    -url http://127.0.0.1:8080/v1/events/exposure -rate 200 -duration 30s \
//	    -tokens tokens.txt -ids sent.csv
//
// Every report's webhook-id is "<run>-<n>" and its url "loadgen://<run>/<n>",
// so the daemon side can match each receipt and revoke call to it; -ids
// writes one CSV line per report (webhook_id, scheduled_unix_nano, status,
// latency_ns). The exit status is 0 only if every report was answered 2xx.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rekeyhq/rekey/internal/secretref"
	"github.com/rekeyhq/rekey/internal/stdwebhooks"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(realMain(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command's flags.
type options struct {
	url         string
	rate        float64
	duration    time.Duration
	secret      secretref.Ref
	tokensFile  string
	idsFile     string
	concurrency int
	timeout     time.Duration
	source      string
	jsonOut     bool
}

func realMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rekey-loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.url, "url", "", "exposure webhook URL, e.g. http://127.0.0.1:8080/v1/events/exposure (required)")
	fs.Float64Var(&o.rate, "rate", 200, "reports per second")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "how long to send")
	fs.StringVar(&o.secret.Env, "secret-env", "REKEY_EXPOSURE_SECRET", "environment variable holding the webhook's signing secret")
	fs.StringVar(&o.secret.File, "secret-file", "", "file holding the signing secret (instead of -secret-env)")
	fs.StringVar(&o.tokensFile, "tokens", "", "file of tokens to report, one per line (or sha256:<hex>), used in turn; default: random tokens rekey does not know")
	fs.StringVar(&o.idsFile, "ids", "", "write webhook_id,scheduled_unix_nano,status,latency_ns per report to this CSV file")
	fs.IntVar(&o.concurrency, "concurrency", 1000, "most reports in flight; a report due when the limit is reached counts as dropped")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "per-request timeout")
	fs.StringVar(&o.source, "source", "loadgen", "the reports' source field")
	fs.BoolVar(&o.jsonOut, "json", false, "print the summary as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.secret.File != "" {
		o.secret.Env = ""
	}
	if err := o.check(); err != nil {
		fmt.Fprintln(stderr, "rekey-loadgen:", err)
		return 2
	}
	sum, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(stderr, "rekey-loadgen:", err)
		return 2
	}
	if o.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(sum)
	} else {
		sum.print(stdout)
	}
	if !sum.clean() {
		return 1
	}
	return 0
}

func (o options) check() error {
	switch {
	case o.url == "":
		return errors.New("-url is required")
	case !strings.HasPrefix(o.url, "http://") && !strings.HasPrefix(o.url, "https://"):
		return errors.New("-url must be an http(s) URL")
	case o.rate <= 0 || o.rate > 100_000:
		return errors.New("-rate must be in (0, 100000]")
	case o.duration <= 0:
		return errors.New("-duration must be positive")
	case o.concurrency < 1:
		return errors.New("-concurrency must be at least 1")
	case o.timeout <= 0:
		return errors.New("-timeout must be positive")
	}
	return nil
}

// result is what became of one report.
type result struct {
	id        string
	scheduled time.Time
	status    int // 0: transport error or dropped
	dropped   bool
	latency   time.Duration
}

// Summary is the run's outcome, as printed.
type Summary struct {
	Run         string         `json:"run"`
	Scheduled   int            `json:"scheduled"`
	Accepted    int            `json:"accepted"` // 2xx
	Statuses    map[string]int `json:"statuses"`
	Errors      int            `json:"transport_errors"`
	Dropped     int            `json:"dropped"`
	Duration    string         `json:"duration"`
	AchievedRPS float64        `json:"achieved_rps"`
	LatencyMS   Percentiles    `json:"latency_ms"` // of answered reports, from the scheduled send time
	FirstErrors []string       `json:"first_errors,omitempty"`
}

// Percentiles of a latency distribution, in milliseconds.
type Percentiles struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

func (s Summary) clean() bool {
	return s.Scheduled > 0 && s.Accepted == s.Scheduled
}

func (s Summary) print(w io.Writer) {
	fmt.Fprintf(w, "run %s: %d reports scheduled in %s (%.1f/s achieved)\n", s.Run, s.Scheduled, s.Duration, s.AchievedRPS)
	fmt.Fprintf(w, "accepted (2xx): %d  transport errors: %d  dropped: %d\n", s.Accepted, s.Errors, s.Dropped)
	codes := make([]string, 0, len(s.Statuses))
	for c := range s.Statuses {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	for _, c := range codes {
		fmt.Fprintf(w, "  HTTP %s: %d\n", c, s.Statuses[c])
	}
	l := s.LatencyMS
	fmt.Fprintf(w, "latency (scheduled send → answer): p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms\n",
		l.P50, l.P90, l.P99, l.P999, l.Max)
	for _, e := range s.FirstErrors {
		fmt.Fprintln(w, "  error:", e)
	}
}

// run sends the reports and summarises.
func run(ctx context.Context, o options) (Summary, error) {
	secret, err := o.secret.Resolve()
	if err != nil {
		return Summary{}, fmt.Errorf("secret: %w", err)
	}
	if secret.IsZero() {
		return Summary{}, errors.New("secret: set -secret-env or -secret-file")
	}
	key, err := stdwebhooks.ParseKey(secret.Reveal())
	if err != nil {
		return Summary{}, fmt.Errorf("secret: %w", err)
	}
	tokens, err := loadTokens(o.tokensFile)
	if err != nil {
		return Summary{}, err
	}
	runID := randomHex(6)
	n := int(math.Round(o.rate * o.duration.Seconds()))
	interval := time.Duration(float64(time.Second) / o.rate)
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConns = o.concurrency
	transport.MaxIdleConnsPerHost = o.concurrency
	client := &http.Client{Transport: transport, Timeout: o.timeout}
	defer transport.CloseIdleConnections()

	results := make([]result, n)
	sem := make(chan struct{}, o.concurrency)
	var (
		wg       sync.WaitGroup
		errMu    sync.Mutex
		firstErr []string
	)
	noteErr := func(s string) {
		errMu.Lock()
		if len(firstErr) < 5 {
			firstErr = append(firstErr, s)
		}
		errMu.Unlock()
	}
	start := time.Now()
	i := 0
	for ; i < n; i++ {
		at := start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
		}
		if ctx.Err() != nil {
			break
		}
		idx, id := i, runID+"-"+strconv.Itoa(i)
		results[idx] = result{id: id, scheduled: at}
		select {
		case sem <- struct{}{}:
		default:
			results[idx].dropped = true
			continue
		}
		body := reportBody(tokens, idx, o.source, runID)
		wg.Go(func() {
			defer func() { <-sem }()
			status, err := send(ctx, client, o.url, key, id, body)
			results[idx].status = status
			results[idx].latency = time.Since(at)
			if err != nil {
				noteErr(err.Error())
			} else if status/100 != 2 {
				noteErr(fmt.Sprintf("%s: HTTP %d", id, status))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	results = results[:i]
	if o.idsFile != "" {
		if err := writeIDs(o.idsFile, results); err != nil {
			return Summary{}, err
		}
	}
	return summarise(runID, results, elapsed, firstErr), nil
}

// send POSTs one signed report.
func send(ctx context.Context, c *http.Client, url string, key stdwebhooks.Key, id string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "rekey-loadgen")
	key.SetHeaders(req.Header, id, time.Now(), body)
	resp, err := c.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", id, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// token is one line of -tokens: a raw token or a fingerprint.
type token struct{ raw, sha256 string }

// reportBody is report i's JSON body.
func reportBody(tokens []token, i int, source, runID string) []byte {
	m := map[string]string{"source": source, "url": "loadgen://" + runID + "/" + strconv.Itoa(i), "type": "loadgen"}
	switch {
	case len(tokens) == 0:
		m["token"] = "loadgen_" + runID + "_" + strconv.Itoa(i) + "_" + randomHex(8)
	case tokens[i%len(tokens)].sha256 != "":
		m["sha256"] = tokens[i%len(tokens)].sha256
	default:
		m["token"] = tokens[i%len(tokens)].raw
	}
	b, _ := json.Marshal(m)
	return b
}

// loadTokens reads -tokens: one token per line, "sha256:<hex>" for a
// fingerprint; blank lines and #-comments are skipped.
func loadTokens(path string) ([]token, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("-tokens: %w", err)
	}
	defer f.Close()
	var out []token
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if fp, ok := strings.CutPrefix(line, "sha256:"); ok {
			if b, err := hex.DecodeString(fp); err != nil || len(b) != 32 {
				return nil, fmt.Errorf("-tokens: line %d: sha256: must be 64 hex characters", n)
			}
			out = append(out, token{sha256: strings.ToLower(fp)})
			continue
		}
		out = append(out, token{raw: line})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("-tokens: %w", err)
	}
	if len(out) == 0 {
		return nil, errors.New("-tokens: the file lists no token")
	}
	return out, nil
}

func writeIDs(path string, rs []result) error {
	var b strings.Builder
	b.WriteString("webhook_id,scheduled_unix_nano,status,latency_ns\n")
	for _, r := range rs {
		status := strconv.Itoa(r.status)
		if r.dropped {
			status = "dropped"
		}
		fmt.Fprintf(&b, "%s,%d,%s,%d\n", r.id, r.scheduled.UnixNano(), status, r.latency.Nanoseconds())
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("-ids: %w", err)
	}
	return nil
}

func summarise(runID string, rs []result, elapsed time.Duration, firstErr []string) Summary {
	s := Summary{Run: runID, Scheduled: len(rs), Statuses: map[string]int{}, Duration: elapsed.Round(time.Millisecond).String(), FirstErrors: firstErr}
	if elapsed > 0 {
		s.AchievedRPS = float64(len(rs)) / elapsed.Seconds()
	}
	var lat []time.Duration
	for _, r := range rs {
		switch {
		case r.dropped:
			s.Dropped++
		case r.status == 0:
			s.Errors++
		default:
			s.Statuses[strconv.Itoa(r.status)]++
			if r.status/100 == 2 {
				s.Accepted++
			}
			lat = append(lat, r.latency)
		}
	}
	slices.Sort(lat)
	s.LatencyMS = Percentiles{P50: pct(lat, 50), P90: pct(lat, 90), P99: pct(lat, 99), P999: pct(lat, 99.9), Max: pct(lat, 100)}
	return s
}

// pct is the nearest-rank p-th percentile of sorted, in milliseconds.
func pct(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return float64(sorted[rank-1].Microseconds()) / 1000
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
