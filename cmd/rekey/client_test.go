package main

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/app"
	"github.com/rekeyhq/rekey/config"
)

const testAdminToken = "cli0c3f5b8e9a7d2c1b4e6f8a0d2c4b6e8f1a3c5e7d9b0f2a4c6e8d0b2f4a6c8e0d"

// TestClientOverHTTPSWithAPrivateCA: the admin API over TLS with a
// certificate of a private CA is trusted with REKEY_CACERT (or --cacert),
// and refused without it.
func TestClientOverHTTPSWithAPrivateCA(t *testing.T) {
	dir, cfgFile := cliConfig(t)
	tokenFile := filepath.Join(dir, "admin-token")
	if err := os.WriteFile(tokenFile, []byte(testAdminToken), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Daemon.AdminTokenFile = tokenFile
	d, err := app.Build(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), app.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	srv := httptest.NewTLSServer(d.AdminHandler())
	t.Cleanup(srv.Close)
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("REKEY_ADDR", srv.URL)
	t.Setenv("REKEY_TOKEN", testAdminToken)
	t.Setenv("REKEY_CONFIG", filepath.Join(dir, "absent.yaml")) // never read in client mode
	if code, out, errOut := runCLI(t, "", "whoami"); code != exitError || !strings.Contains(errOut, "certificate") {
		t.Fatalf("without the CA: exit %d, want %d naming the certificate (%s%s)", code, exitError, out, errOut)
	}
	if code, out, errOut := runCLI(t, "", "whoami", "--cacert", ca); code != exitOK || !strings.Contains(out, "admin") {
		t.Fatalf("--cacert: exit %d (%s%s)", code, out, errOut)
	}
	t.Setenv("REKEY_CACERT", ca)
	if code, out, errOut := runCLI(t, "", "status"); code != exitOK || !strings.Contains(out, "api") {
		t.Fatalf("REKEY_CACERT: exit %d (%s%s)", code, out, errOut)
	}
	// The credential from a file: --token-file, else REKEY_TOKEN_FILE,
	// both before REKEY_TOKEN.
	t.Setenv("REKEY_TOKEN", "rk_wrong")
	if code, out, errOut := runCLI(t, "", "whoami", "--token-file", tokenFile); code != exitOK || !strings.Contains(out, "admin") {
		t.Fatalf("--token-file: exit %d (%s%s)", code, out, errOut)
	}
	t.Setenv("REKEY_TOKEN_FILE", tokenFile)
	if code, out, errOut := runCLI(t, "", "whoami"); code != exitOK || !strings.Contains(out, "admin") {
		t.Fatalf("REKEY_TOKEN_FILE: exit %d (%s%s)", code, out, errOut)
	}
	t.Setenv("REKEY_TOKEN_FILE", "")
	if code, out, errOut := runCLI(t, "", "whoami"); code != exitRefused {
		t.Fatalf("a wrong REKEY_TOKEN: exit %d, want %d (%s%s)", code, exitRefused, out, errOut)
	}
}

// TestWaitingLine renders the structured waiting state (SHARED-CONTRACTS)
// with its progress and countdowns.
func TestWaitingLine(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	w := &waiting{Reason: "quiet_period", Detail: "no traffic on the old key", Since: now.Add(-12 * time.Second).Format(time.RFC3339),
		NextCheck: now.Add(4 * time.Second).Format(time.RFC3339), Deadline: now.Add(59 * time.Minute).Format(time.RFC3339),
		Progress: &progress{Done: 12, Of: 30, Unit: "s"}, LastError: "prometheus: connection refused"}
	got := w.describe(now)
	for _, want := range []string{"quiet_period: no traffic on the old key", "(12/30 s)", "next check in 4s", "deadline in 59m0s", "last error: prometheus: connection refused"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
	if got := w.describe(now.Add(time.Hour)); !strings.Contains(got, "next check now") {
		t.Errorf("a past check reads %q, want \"now\"", got)
	}
	for reason, settled := range map[string]bool{"approval": true, "secret": true, "quiet_period": false, "retry_backoff": false} {
		r := rotationOut{Waiting: &waiting{Reason: reason}}
		r.Phase = "draining"
		if r.settled() != settled {
			t.Errorf("waiting for %s: settled %v, want %v", reason, r.settled(), settled)
		}
	}
}

// TestExitCodeTable: one table for both modes; API answers map onto it.
func TestExitCodeTable(t *testing.T) {
	for name, tc := range map[string]struct {
		err  error
		code int
		kind string
	}{
		"usage":          {usageError{"x"}, exitUsage, "usage"},
		"missing config": {configError{os.ErrNotExist}, exitUsage, "configuration"},
		"400":            {&apiError{400, "bad"}, exitUsage, "usage"},
		"401":            {&apiError{401, "who"}, exitRefused, "unauthenticated"},
		"403":            {&apiError{403, "no"}, exitRefused, "forbidden"},
		"404":            {&apiError{404, "?"}, exitNotFound, "not_found"},
		"409":            {&apiError{409, "busy"}, exitRefused, "refused"},
		"500":            {&apiError{500, "oops"}, exitError, "error"},
		"tampered":       {errAuditTampered, exitAudit, "audit_tampered"},
		"unsuccessful":   {errUnsuccessful, exitOutcome, "unsuccessful"},
		"live match":     {errLiveMatch, exitExposed, "live_match"},
	} {
		if code, kind := classify(tc.err); code != tc.code || kind != tc.kind {
			t.Errorf("%s: %d %s, want %d %s", name, code, kind, tc.code, tc.kind)
		}
	}
}

// TestHelpExitsZero: help is not an error.
func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"rotate", "--help"}, {"help", "describe"}, {"token", "create", "-h"}} {
		if code, out, errOut := runCLI(t, "", args...); code != exitOK || !strings.Contains(out, "Usage:") {
			t.Errorf("rekey %s: exit %d (%s%s)", strings.Join(args, " "), code, out, errOut)
		}
	}
	if code, _, _ := runCLI(t, ""); code != exitUsage {
		t.Errorf("rekey alone: exit %d, want %d", code, exitUsage)
	}
}

// TestJSONErrorsEvenWhenParsingStops: -o json after a bad flag still gets
// a JSON error; --as is refused with the reason.
func TestJSONErrorsEvenWhenParsingStops(t *testing.T) {
	code, _, errOut := runCLI(t, "", "status", "--bogus", "-o", "json")
	var e struct {
		Code int    `json:"code"`
		Kind string `json:"kind"`
	}
	if err := json.Unmarshal([]byte(errOut), &e); err != nil || code != exitUsage || e.Code != exitUsage || e.Kind != "usage" {
		t.Fatalf("exit %d, stderr %q (%v)", code, errOut, err)
	}
	if code, _, errOut := runCLI(t, "", "approve", "rot_x", "--as", "carol"); code != exitUsage || !strings.Contains(errOut, "--as is gone") {
		t.Fatalf("--as: exit %d, stderr %q", code, errOut)
	}
}

// TestProgressLine: what rotate --wait prints while it follows a rotation.
func TestProgressLine(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	r := rotationOut{}
	r.ID, r.Key, r.Phase, r.NextAttemptAt = "rot_1", "api", "draining", now.Add(5*time.Second).Format(time.RFC3339)
	if got := progressLine(r, now); got != "rot_1 api: draining, next step in 5s" {
		t.Errorf("plain: %q", got)
	}
	r.LastError, r.Attempts = "issuer: 503", 4
	if got := progressLine(r, now); got != "rot_1 api: draining — attempt 4 failed: issuer: 503, retry in 5s" {
		t.Errorf("failing: %q", got)
	}
	r.Waiting = &waiting{Reason: "quiet_period", Progress: &progress{Done: 12, Of: 30, Unit: "s"}}
	if got := progressLine(r, now); got != "rot_1 api: draining — waiting for quiet_period (12/30 s)" {
		t.Errorf("waiting: %q", got)
	}
	a, b := r, r
	b.Waiting = &waiting{Reason: "quiet_period", Progress: &progress{Done: 13, Of: 30, Unit: "s"}}
	if stateOf(a) != stateOf(b) {
		t.Error("a countdown tick is a new plain line")
	}
	b.Phase = "revoking"
	if stateOf(a) == stateOf(b) {
		t.Error("a new phase is not a new plain line")
	}
}

// TestRotateWaitOnATerminal: on a terminal, rotate --wait redraws one line
// in place (carriage return, erase line) with what the rotation waits for
// and its clock (the quiet period's progress, the deadline's countdown),
// and ends it with a newline; the rotation is printed on stdout when done.
func TestRotateWaitOnATerminal(t *testing.T) {
	_, cfg := cliConfig(t)
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// A drain gate with a quiet period: the rotation waits a few seconds
	// between cut-over and revoke, long enough for countdown lines.
	extra := "traffic: [{name: fixed, type: fixed}]\ndefaults: {drain: {source: fixed, quiet_period: 2s, max_wait: 1m, poll_interval: 200ms}}\n"
	if err := os.WriteFile(cfg, append(b, []byte(extra)...), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, "", "rotate", "--break-glass", "-c", cfg, "--bootstrap", "--wait", "api"); code != exitOK {
		t.Fatalf("bootstrap: %d %s%s", code, out, errOut)
	}
	var out, errb strings.Builder
	c := &cli{ctx: context.Background(), stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: os.Getenv, tty: func() bool { return true }}
	root := c.root()
	root.SetArgs([]string{"rotate", "--break-glass", "-c", cfg, "--wait", "api"})
	if err := root.Execute(); err != nil {
		t.Fatalf("rotate --wait: %v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), "phase=done") {
		t.Fatalf("stdout %q", out.String())
	}
	progress := errb.String()
	if !strings.Contains(progress, "\r\033[K") || !strings.HasSuffix(progress, "\n") || strings.Count(progress, "\n") != 1 {
		t.Fatalf("not one line redrawn in place: %q", progress)
	}
	// The daemon's waiting state: the quiet period's progress and the
	// max_wait deadline's countdown.
	if !strings.Contains(progress, "quiet_period") || !strings.Contains(progress, "/2 s)") || !strings.Contains(progress, "deadline in ") {
		t.Fatalf("no running clock while draining: %q", progress)
	}
}

// Plain http only to loopback unless REKEY_INSECURE_HTTP=1; the client
// never follows a redirect (it would carry a submitted secret along).
func TestClientTransportSafety(t *testing.T) {
	for base, ok := range map[string]bool{
		"http://127.0.0.1:8081": true, "http://localhost:8081": true, "http://[::1]:8081": true,
		"https://rekey.internal:8443": true, "http://rekey.internal:8081": false, "http://10.0.0.5:8081": false,
	} {
		if err := plainHTTPAllowed(base, ""); (err == nil) != ok {
			t.Errorf("%s: %v, want allowed %v", base, err, ok)
		}
	}
	if err := plainHTTPAllowed("http://rekey.internal:8081", "1"); err != nil {
		t.Errorf("REKEY_INSECURE_HTTP=1 refused: %v", err)
	}
	var hits atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer other.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	c := &cli{ctx: context.Background(), stdout: io.Discard, stderr: io.Discard, getenv: func(k string) string {
		if k == "REKEY_TOKEN" {
			return "rk_test"
		}
		return ""
	}}
	cl, err := c.dial(redirector.URL)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if _, err := cl.post(context.Background(), "/v1/rotations/rot_x/submit", map[string]string{"value": "s3cret"}, &out); err == nil ||
		!strings.Contains(err.Error(), "HTTP 307 redirecting to") || !strings.Contains(err.Error(), "does not follow redirects") {
		t.Errorf("a redirect: %v, want an error saying it was not followed", err)
	}
	if hits.Load() != 0 {
		t.Fatal("the client followed a redirect to another host")
	}
	// An address with credentials in it is refused without echoing them.
	for _, addr := range []string{"http://user:pa55word@127.0.0.1:1", "https://user:pa55word@rekey.internal"} {
		_, err := c.dial(addr)
		if err == nil || strings.Contains(err.Error(), "pa55word") || !strings.Contains(err.Error(), "carries credentials") {
			t.Errorf("dial %s: %v, want refused without echoing the password", addr, err)
		}
	}
}
