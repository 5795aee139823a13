package http_test

import (
	"context"
	nethttp "net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	rkhttp "github.com/rekeyhq/rekey/issuers/http"
	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/testing/kubeadapt"
)

// idemRequest is a mint request as the engine sends it, with its intent's
// idempotency key.
func idemRequest(name string, gen int) rotator.MintRequest {
	req := mintRequest(name, "clusters:read")
	req.Generation, req.RotationID = gen, "rot_0123"
	req.IdempotencyKey = rotator.IdempotencyKey(req.RotationID, gen)
	return req
}

// With mint.idempotency_key_header set, the issuer declares the
// capability, sends the intent's key as an RFC 8941 string, and a repeated
// mint of the same intent gets the same credential back — id and secret —
// while the server creates one key and counts one replay.
func TestMintSendsTheIdempotencyKey(t *testing.T) {
	e := newKAEnv(t)
	var mu sync.Mutex
	var seen []string
	ts := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get(kubeadapt.IdempotencyHeader))
		mu.Unlock()
		e.ka.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	cfg := e.cfg
	cfg.BaseURL = ts.URL
	if rotator.IdempotentMinter(e.issuer).IdempotencyWindow() != 0 {
		t.Fatal("the example without the header declares idempotency")
	}
	cfg.Mint.IdempotencyKeyHeader = "idempotency-key"
	is := e.newIssuer(t, cfg)
	if w := is.IdempotencyWindow(); w != rkhttp.DefaultIdempotencyWindow {
		t.Fatalf("window %s, want the default %s", w, rkhttp.DefaultIdempotencyWindow)
	}
	req := idemRequest("ci-v2", 2)
	a, err := is.Mint(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := is.Mint(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != b.ID || a.Secret.Reveal() != b.Secret.Reveal() {
		t.Fatalf("the repeated mint answered %s, first %s", b.ID, a.ID)
	}
	if n, st := len(e.ka.Keys()), e.ka.Idempotency(); n != 1 || st.Replays != 1 {
		t.Fatalf("server: %d keys, %+v; want 1 key, 1 replay", n, st)
	}
	want := `"rekey-rot_0123-v2"`
	mu.Lock()
	got := append([]string(nil), seen...)
	mu.Unlock()
	if len(got) != 2 || got[0] != want || got[1] != want {
		t.Fatalf("Idempotency-Key headers %q, want %s twice", got, want)
	}
	// Another intent is another key: a new credential.
	c, err := is.Mint(context.Background(), idemRequest("ci-v3", 3))
	if err != nil || c.ID == a.ID {
		t.Fatalf("another intent: %v %s", err, c.ID)
	}
	if strings.Contains(e.logs.String(), a.Secret.Reveal()) {
		t.Fatal("logs hold the secret")
	}
}

// Without the header, nothing is sent and a repeated mint creates a
// second key (the engine then reaps by name).
func TestMintWithoutTheHeaderSendsNoKey(t *testing.T) {
	e := newKAEnv(t)
	req := idemRequest("ci-v2", 2)
	for range 2 {
		if _, err := e.issuer.Mint(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	if n, st := len(e.ka.Keys()), e.ka.Idempotency(); n != 2 || st.Replays != 0 {
		t.Fatalf("server: %d keys, %+v; want 2 keys, no replay", n, st)
	}
}

// The server's answers to a misused key are classified: 409 (the key's
// first request still in flight) is retried, 422 (the key reused with
// another payload) stops the rotation.
func TestIdempotencyConflictsAreClassified(t *testing.T) {
	// The first create is held in flight until released; the others pass.
	// (A non-blocking send here raced the test's receive: when the create
	// came first, nothing was held and the test waited forever.)
	entered, release := make(chan struct{}, 1), make(chan struct{})
	var first sync.Once
	ka := kubeadapt.New(kubeadapt.Options{AdminToken: adminToken, OnCreate: func(string) {
		held := false
		first.Do(func() { held = true })
		if held {
			entered <- struct{}{}
			<-release
		}
	}})
	ts := httptest.NewServer(ka)
	t.Cleanup(ts.Close)
	t.Setenv("KA_ADMIN_TOKEN", adminToken)
	cfg := exampleConfig(t, ts.URL)
	cfg.Mint.IdempotencyKeyHeader = "Idempotency-Key"
	cfg.Mint.IdempotencyWindow = time.Hour
	is, err := rkhttp.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	req := idemRequest("ci-v2", 2)
	done := make(chan error, 1)
	go func() { _, err := is.Mint(context.Background(), req); done <- err }()
	<-entered
	_, err = is.Mint(context.Background(), req)
	assertClass(t, err, false, rotator.ReasonTransient, "HTTP 409", "still in flight")
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	other := req
	other.Name = "ci-other"
	_, err = is.Mint(context.Background(), other)
	if err == nil || !rotator.IsPermanent(err) || !strings.Contains(err.Error(), "HTTP 422") {
		t.Fatalf("the key with another payload: %v, want a permanent 422", err)
	}
	if n := len(ka.Keys()); n != 1 {
		t.Fatalf("%d keys created, want 1", n)
	}
	if strings.Contains(err.Error(), kubeadapt.SecretPrefix) {
		t.Fatal("the error quotes a secret")
	}
}

// bodyKeyed is the example issuer sending the intent's key in the mint
// body, with the window the configuration must then state.
func bodyKeyed(cfg rkhttp.Config, window time.Duration) rkhttp.Config {
	cfg.Mint.Body = strings.Replace(cfg.Mint.Body, `{{json .Name}}`, `{{json .Name}}, "idempotency_key": {{json .IdempotencyKey}}`, 1)
	cfg.Mint.IdempotencyWindow = window
	return cfg
}

// A mint body (or query, or header template) that sends the intent's key
// makes the issuer declare the capability, so that the engine resumes a
// lost mint by asking again instead of revoking what the first attempt
// created: without it, the API would hand back the revoked credential.
// Such a template needs an explicit window; a window with no key sent is
// refused.
func TestKeyInATemplateDeclaresTheCapability(t *testing.T) {
	e := newKAEnv(t)
	base := e.cfg
	if !strings.Contains(base.Mint.Body, `{{json .Name}}`) {
		t.Fatalf("the example's mint body changed: %s", base.Mint.Body)
	}
	err := bodyKeyed(base, 0).Validate()
	if err == nil || !strings.Contains(err.Error(), "mint.idempotency_window: required because mint.body sends {{.IdempotencyKey}}") {
		t.Fatalf("a body key without a window: %v", err)
	}
	noKey := base
	noKey.Mint.IdempotencyWindow = time.Hour
	if err := noKey.Validate(); err == nil || !strings.Contains(err.Error(), "mint.idempotency_window: needs") {
		t.Fatalf("a window with no key sent: %v", err)
	}
	for name, cfg := range map[string]rkhttp.Config{
		"body":           bodyKeyed(base, time.Hour),
		"query":          withPath(base, base.Mint.Path+"?idempotency_key={{urlquery $.IdempotencyKey}}"),
		"header":         withMintHeader(base, "X-Request-Key", `{{if .IdempotencyKey}}{{.IdempotencyKey}}{{end}}`),
		"common headers": withCommonHeader(base, "X-Request-Key", `{{with .}}{{.IdempotencyKey}}{{end}}`),
	} {
		is := e.newIssuer(t, cfg)
		if w := is.IdempotencyWindow(); w != time.Hour {
			t.Errorf("%s: window %s, want the configured 1h", name, w)
		}
	}
	if w := e.issuer.IdempotencyWindow(); w != 0 {
		t.Fatalf("the example without a key declares %s", w)
	}
	// The body key reaches the API, which replays the first credential.
	is := e.newIssuer(t, bodyKeyed(base, time.Hour))
	req := idemRequest("ci-v2", 2)
	a, err := is.Mint(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := is.Mint(context.Background(), req)
	if err != nil || a.ID != b.ID || a.Secret.Reveal() != b.Secret.Reveal() {
		t.Fatalf("repeated mint: %v, %s then %s", err, a.ID, b.ID)
	}
	if st := e.ka.Idempotency(); st.Replays != 1 {
		t.Fatalf("server %+v, want 1 replay", st)
	}
}

func withPath(cfg rkhttp.Config, p string) rkhttp.Config {
	cfg.Mint.Path, cfg.Mint.IdempotencyWindow = p, time.Hour
	return cfg
}

func withMintHeader(cfg rkhttp.Config, name, v string) rkhttp.Config {
	cfg.Mint.Headers = map[string]string{name: v}
	cfg.Mint.IdempotencyWindow = time.Hour
	return cfg
}

func withCommonHeader(cfg rkhttp.Config, name, v string) rkhttp.Config {
	cfg.Headers = map[string]string{name: v}
	cfg.Mint.IdempotencyWindow = time.Hour
	return cfg
}

// A failure the API stored for the key and replays (Idempotent-Replayed:
// true) is marked for the engine, which then abandons the intent; the
// first answer, not a replay, is not marked. Without a key sent, the
// header means nothing.
func TestReplayedFailureIsMarked(t *testing.T) {
	e := newKAEnv(t)
	cfg := e.cfg
	cfg.Mint.IdempotencyKeyHeader = "Idempotency-Key"
	is := e.newIssuer(t, cfg)
	e.ka.FailNextCreates(1, nethttp.StatusInternalServerError)
	req := idemRequest("ci-v2", 2)
	_, err := is.Mint(context.Background(), req)
	if err == nil || rotator.IsReplayedFailure(err) || rotator.IsPermanent(err) {
		t.Fatalf("first answer: %v (replayed %v)", err, rotator.IsReplayedFailure(err))
	}
	_, err = is.Mint(context.Background(), req)
	if !rotator.IsReplayedFailure(err) || rotator.IsPermanent(err) || !strings.Contains(err.Error(), "HTTP 500") ||
		!strings.Contains(err.Error(), "replayed for idempotency key rekey-rot_0123-v2") {
		t.Fatalf("replayed answer: %v", err)
	}
	if _, err := is.Mint(context.Background(), idemRequest("ci-v3", 3)); err != nil {
		t.Fatalf("a new key: %v", err)
	}
}
