package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/webhooks/exposure"
)

// intake records reports as the engine would, for the real exposure
// handler the load generator talks to.
type intake struct {
	mu      sync.Mutex
	reports []rotator.ExposureReport
}

func (in *intake) ReportExposure(_ context.Context, r rotator.ExposureReport) (rotator.ExposureResult, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.reports = append(in.reports, r)
	return rotator.ExposureResult{}, nil
}

func (in *intake) ReportDeparture(context.Context, rotator.DepartureReport) (rotator.DepartureResult, error) {
	return rotator.DepartureResult{}, nil
}

type guard struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (g *guard) Seen(_ context.Context, ns, id string, _ time.Time) (bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	k := ns + "/" + id
	s := g.seen[k]
	g.seen[k] = true
	return s, nil
}

func TestLoadAgainstTheExposureWebhook(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	t.Setenv("REKEY_TEST_LOADGEN_SECRET", secret)
	in := &intake{}
	cfg := exposure.DefaultConfig()
	cfg.Fingerprints = true    // the token file has sha256: lines
	cfg.RatePerMinute = 100000 // load, not a sender out of control
	cfg.SecretEnv = "REKEY_TEST_LOADGEN_SECRET"
	h, err := exposure.New(cfg, in, &guard{seen: map[string]bool{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(exposure.Route, h)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	fp := rotator.Fingerprint("ka_live_B")
	if err := os.WriteFile(tokens, []byte("# test tokens\nka_live_A\n\nsha256:"+strings.ToUpper(fp)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ids := filepath.Join(dir, "ids.csv")
	var out, errOut bytes.Buffer
	code := realMain(context.Background(), []string{
		"-url", srv.URL + "/v1/events/exposure", "-rate", "100", "-duration", "500ms",
		"-secret-env", "REKEY_TEST_LOADGEN_SECRET", "-tokens", tokens, "-ids", ids, "-json",
	}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out.String(), errOut.String())
	}
	var sum Summary
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Scheduled != 50 || sum.Accepted != 50 || sum.Statuses["202"] != 50 || sum.LatencyMS.P99 <= 0 || sum.LatencyMS.Max < sum.LatencyMS.P50 {
		t.Fatalf("summary %+v", sum)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.reports) != 50 {
		t.Fatalf("%d reports reached the engine", len(in.reports))
	}
	got := map[string]int{}
	for _, r := range in.reports {
		got[r.Fingerprint]++
		if !strings.HasPrefix(r.ID, sum.Run+"-") || !strings.HasPrefix(r.URL, "loadgen://"+sum.Run+"/") {
			t.Fatalf("report %+v", r)
		}
	}
	if got[rotator.Fingerprint("ka_live_A")] != 25 || got[fp] != 25 {
		t.Fatalf("fingerprints %v", got)
	}
	csv, err := os.ReadFile(ids)
	if err != nil || strings.Count(string(csv), "\n") != 51 || !strings.Contains(string(csv), sum.Run+"-49,") {
		t.Fatalf("ids file: %v\n%s", err, csv)
	}
}

func TestFailuresAreReported(t *testing.T) {
	t.Setenv("REKEY_TEST_LOADGEN_SECRET", "a-raw-secret-of-enough-length")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	var out, errOut bytes.Buffer
	code := realMain(context.Background(), []string{"-url", srv.URL, "-rate", "50", "-duration", "100ms", "-secret-env", "REKEY_TEST_LOADGEN_SECRET"}, &out, &errOut)
	if code != 1 || !strings.Contains(out.String(), "HTTP 503: 5") {
		t.Fatalf("exit %d: %s %s", code, out.String(), errOut.String())
	}
}

func TestUsage(t *testing.T) {
	for name, args := range map[string][]string{
		"no url":    {},
		"bad rate":  {"-url", "http://x", "-rate", "0"},
		"no secret": {"-url", "http://127.0.0.1:1", "-secret-env", "REKEY_TEST_UNSET_VARIABLE"},
	} {
		var out, errOut bytes.Buffer
		if code := realMain(context.Background(), args, &out, &errOut); code != 2 {
			t.Errorf("%s: exit %d", name, code)
		}
	}
}

func TestPercentiles(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	if pct(d, 50) != 50 || pct(d, 99) != 99 || pct(d, 100) != 100 || pct(nil, 50) != 0 {
		t.Fatalf("p50 %v p99 %v max %v", pct(d, 50), pct(d, 99), pct(d, 100))
	}
}
