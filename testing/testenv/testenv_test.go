package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) { Main(m) }

// call does an HTTP request and returns status and body. The timeout is
// generous: a loaded CI machine (the whole suite in parallel on two cores)
// can take seconds to answer; only wantHang wants a short one.
func call(t *testing.T, method, url string, header map[string]string, body string) (int, string, error) {
	t.Helper()
	return callWithin(t, 15*time.Second, method, url, header, body)
}

func callWithin(t *testing.T, within time.Duration, method, url string, header map[string]string, body string) (int, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// mustCall is call that fails the test unless the status is want.
func mustCall(t *testing.T, want int, method, url string, header map[string]string, body string) string {
	t.Helper()
	code, b, err := call(t, method, url, header, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	if code != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, url, code, want, b)
	}
	return b
}

// wantHang checks that a request to a paused server times out rather than
// being refused.
func wantHang(t *testing.T, url string) {
	t.Helper()
	_, _, err := callWithin(t, time.Second, http.MethodGet, url, nil, "")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GET %s on a paused server: err = %v, want a timeout", url, err)
	}
}

// wantRefused checks that nothing listens any more.
func wantRefused(t *testing.T, url string) {
	t.Helper()
	_, _, err := call(t, http.MethodGet, url, nil, "")
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("GET %s on a stopped server: err = %v, want connection refused", url, err)
	}
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// FreePort promises distinct ports, not that a port stays free (anything
// on the machine may bind it once released), so only that is checked.
func TestFreePort(t *testing.T) {
	seen := map[int]bool{}
	for range 20 {
		port := FreePort(t)
		if port <= 0 || port > 65535 || seen[port] {
			t.Fatalf("port %d out of range or handed out twice", port)
		}
		seen[port] = true
	}
}

// The owner check tells our server's socket from a stranger's.
func TestCheckOwner(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr().String()
	if err := checkOwner("self", syscall.Getpgrp(), addr); err != nil {
		t.Fatalf("our own listener: %v", err)
	}
	if err := checkOwner("stranger", 1<<30, addr); !errors.Is(err, errPortBusy) {
		t.Fatalf("a listener of another group: %v, want errPortBusy", err)
	}
}

func TestVault(t *testing.T) {
	t.Parallel()
	v := Vault(t)
	if !strings.HasPrefix(v.Addr, "http://127.0.0.1:") || v.Token != "root" {
		t.Fatalf("Addr, Token = %q, %q", v.Addr, v.Token)
	}
	auth := map[string]string{"X-Vault-Token": v.Token}
	secret := v.Addr + "/v1/secret/data/testenv"
	mustCall(t, http.StatusOK, http.MethodPost, secret, auth, `{"data":{"k":"v1"}}`)
	if b := mustCall(t, http.StatusOK, http.MethodGet, secret, auth, ""); !strings.Contains(b, `"k":"v1"`) {
		t.Fatalf("read back: %s", b)
	}

	must(t, "pause", v.Pause())
	wantHang(t, v.Addr+"/v1/sys/health")
	must(t, "resume", v.Resume())
	if b := mustCall(t, http.StatusOK, http.MethodGet, secret, auth, ""); !strings.Contains(b, `"k":"v1"`) {
		t.Fatalf("pause lost the secret: %s", b)
	}

	must(t, "stop", v.Stop())
	wantRefused(t, v.Addr+"/v1/sys/health")
	must(t, "start", v.Start())
	mustCall(t, http.StatusOK, http.MethodGet, v.Addr+"/v1/sys/health", nil, "")
	// Dev mode is in memory: the restarted server is empty.
	mustCall(t, http.StatusNotFound, http.MethodGet, secret, auth, "")
}

func TestMoto(t *testing.T) {
	t.Parallel()
	m := Moto(t)
	sm := func(action, body string) string {
		t.Helper()
		return mustCall(t, http.StatusOK, http.MethodPost, m.Endpoint+"/", smHeader(action), body)
	}
	wantNoSecret := func() {
		t.Helper()
		// Real AWS answers 400, moto 404; both name the exception.
		code, b, err := call(t, http.MethodPost, m.Endpoint+"/", smHeader("GetSecretValue"), `{"SecretId":"testenv"}`)
		if err != nil || code < 400 || !strings.Contains(b, "ResourceNotFoundException") {
			t.Fatalf("GetSecretValue: %d %s %v, want ResourceNotFoundException", code, b, err)
		}
	}
	sm("CreateSecret", `{"Name":"testenv","SecretString":"s1"}`)
	if b := sm("GetSecretValue", `{"SecretId":"testenv"}`); !strings.Contains(b, `"s1"`) {
		t.Fatalf("GetSecretValue: %s", b)
	}

	must(t, "reset", m.Reset())
	wantNoSecret()

	sm("CreateSecret", `{"Name":"testenv","SecretString":"s2"}`)
	must(t, "pause", m.Pause())
	wantHang(t, m.Endpoint+"/moto-api/")
	must(t, "resume", m.Resume())
	sm("GetSecretValue", `{"SecretId":"testenv"}`)

	must(t, "stop", m.Stop())
	wantRefused(t, m.Endpoint+"/moto-api/")
	must(t, "start", m.Start())
	// moto keeps no state across a restart.
	wantNoSecret()
}

// smHeader returns the headers of a Secrets Manager JSON request to moto.
func smHeader(action string) map[string]string {
	return map[string]string{
		"X-Amz-Target": "secretsmanager." + action,
		"Content-Type": "application/x-amz-json-1.1",
		// moto routes on the credential scope; it checks no signature.
		"Authorization": "AWS4-HMAC-SHA256 Credential=test/20250101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=0",
	}
}

func TestMotoEnv(t *testing.T) {
	want := map[string]string{
		"AWS_ACCESS_KEY_ID":         "test",
		"AWS_SECRET_ACCESS_KEY":     "test",
		"AWS_DEFAULT_REGION":        "us-east-1",
		"AWS_REGION":                "us-east-1",
		"AWS_EC2_METADATA_DISABLED": "true",
	}
	got := map[string]string{}
	for _, kv := range (&MotoServer{}).Env() {
		k, v, _ := strings.Cut(kv, "=")
		got[k] = v
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Env() = %v, want %v", got, want)
	}
	SetAWSEnv(t)
	for k, v := range want {
		if os.Getenv(k) != v {
			t.Errorf("after SetAWSEnv, %s = %q, want %q", k, os.Getenv(k), v)
		}
	}
}

func TestPrometheus(t *testing.T) {
	t.Parallel()
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "# TYPE testenv_answer gauge")
		fmt.Fprintln(w, "testenv_answer 42")
	}))
	t.Cleanup(target.Close)
	host := strings.TrimPrefix(target.URL, "http://")
	p := Prometheus(t, PromOptions{Targets: []string{host}, ScrapeInterval: 200 * time.Millisecond})

	waitUp := func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		start := time.Now()
		must(t, "wait up", p.WaitUp(ctx))
		t.Logf("targets up after %s", time.Since(start).Round(time.Millisecond))
	}
	waitUp()
	samples, err := p.Query(context.Background(), `testenv_answer{job="rekey"}`)
	must(t, "query", err)
	if len(samples) != 1 || samples[0].Value != 42 || samples[0].Metric["instance"] != host {
		t.Fatalf("testenv_answer = %+v, want 42 from %s", samples, host)
	}

	must(t, "pause", p.Pause())
	wantHang(t, p.Addr+"/-/ready")
	must(t, "resume", p.Resume())

	must(t, "stop", p.Stop())
	wantRefused(t, p.Addr+"/-/ready")
	must(t, "start", p.Start())
	waitUp()
}

func TestPrometheusWaitUpTimesOut(t *testing.T) {
	t.Parallel()
	// A target that fails every scrape, on a port this test holds: a port
	// merely released could be bound by anything before Prometheus scrapes.
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(failing.Close)
	dead := strings.TrimPrefix(failing.URL, "http://")
	p := Prometheus(t, PromOptions{Targets: []string{dead}, ScrapeInterval: 200 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err := p.WaitUp(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), dead) {
		t.Fatalf("WaitUp with a dead target: %v, want a deadline error naming %s", err, dead)
	}
}

func TestPostgresShared(t *testing.T) {
	t.Parallel()
	pg := Postgres(t)
	if again := Postgres(t); again != pg {
		t.Fatal("Postgres returned a second cluster under Main")
	}
	if want := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", pg.Port); pg.DSN != want {
		t.Fatalf("DSN = %q, want %q", pg.DSN, want)
	}
	a, b := pg.CreateDatabase(t), pg.CreateDatabase(t)
	if a == b {
		t.Fatalf("CreateDatabase returned %q twice", a)
	}
	ctx := context.Background()
	for _, dsn := range []string{a, b} {
		db := dsn[strings.LastIndex(dsn, "/")+1 : strings.Index(dsn, "?")]
		got, err := pg.Exec(ctx, db, "SELECT current_database()")
		must(t, "select", err)
		if got != db {
			t.Fatalf("current_database() = %q, want %q", got, db)
		}
	}
	if err := pg.Stop(); err == nil {
		t.Fatal("Stop of the shared cluster succeeded")
	}
}

func TestNewPostgres(t *testing.T) {
	t.Parallel()
	pg := NewPostgres(t)
	ctx := context.Background()
	dsn := pg.CreateDatabase(t)
	db := dsn[strings.LastIndex(dsn, "/")+1 : strings.Index(dsn, "?")]
	_, err := pg.Exec(ctx, db, "CREATE TABLE kv (k text); INSERT INTO kv VALUES ('kept')")
	must(t, "create table", err)

	must(t, "pause", pg.Pause())
	if err := pg.ready(ctx); err == nil {
		t.Fatal("pg_isready succeeded against a paused server")
	}
	must(t, "resume", pg.Resume())

	must(t, "stop", pg.Stop())
	if err := pg.ready(ctx); err == nil {
		t.Fatal("pg_isready succeeded against a stopped server")
	}
	must(t, "start", pg.Start())
	got, err := pg.Exec(ctx, db, "SELECT k FROM kv")
	must(t, "select", err)
	if got != "kept" {
		t.Fatalf("after restart, kv = %q, want kept", got)
	}
}

// recordingTB records how a helper ended the test instead of ending it.
type recordingTB struct {
	testing.TB
	skipped, fatal string
}

func (r *recordingTB) Skip(args ...any) { r.skipped = fmt.Sprint(args...); runtime.Goexit() }
func (r *recordingTB) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (r *recordingTB) Fatal(args ...any) { r.fatal = fmt.Sprint(args...); runtime.Goexit() }
func (r *recordingTB) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestMissingBinary(t *testing.T) {
	tests := map[string]struct {
		skipEnv  string
		wantSkip bool
	}{
		"fails by default":           {skipEnv: "", wantSkip: false},
		"skips when asked":           {skipEnv: "1", wantSkip: true},
		"fails for other env values": {skipEnv: "true", wantSkip: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Setenv(VaultBinEnv, "/nonexistent/vault")
			t.Setenv(SkipMissingEnv, tc.skipEnv)
			rec := &recordingTB{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				Vault(rec)
				t.Error("Vault returned with a missing binary")
			}()
			<-done
			msg := rec.fatal
			if tc.wantSkip {
				msg = rec.skipped
			}
			if msg == "" || (rec.skipped != "") != tc.wantSkip {
				t.Fatalf("skipped = %q, fatal = %q; want skip %v", rec.skipped, rec.fatal, tc.wantSkip)
			}
			if !strings.Contains(msg, "/nonexistent/vault") {
				t.Errorf("message %q does not name the binary", msg)
			}
		})
	}
}
