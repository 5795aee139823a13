package http_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	nethttp "net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rekeyhq/rekey/config"
	rkhttp "github.com/rekeyhq/rekey/issuers/http"
	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/testing/kubeadapt"
)

const adminToken = "ka-admin-0123456789abcdef-test-token"

// kaEnv is a Kubeadapt stand-in and an issuer configured from the shipped
// example against it.
type kaEnv struct {
	ka     *kubeadapt.Server
	url    string
	cfg    rkhttp.Config
	logs   *syncBuffer
	issuer *rkhttp.Issuer
}

func newKAEnv(t *testing.T) *kaEnv {
	t.Helper()
	ka := kubeadapt.New(kubeadapt.Options{AdminToken: adminToken})
	ts := httptest.NewServer(ka)
	t.Cleanup(ts.Close)
	t.Setenv("KA_ADMIN_TOKEN", adminToken)
	e := &kaEnv{ka: ka, url: ts.URL, cfg: exampleConfig(t, ts.URL), logs: &syncBuffer{}}
	e.issuer = e.newIssuer(t, e.cfg)
	t.Cleanup(func() { e.assertLogsClean(t) })
	return e
}

func (e *kaEnv) newIssuer(t *testing.T, cfg rkhttp.Config) *rkhttp.Issuer {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	is, err := rkhttp.New(cfg, logger)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return is
}

// assertLogsClean fails if the issuer logged the admin token or any secret
// the stand-in ever minted (checked by prefix: every secret starts with it
// and a fingerprint never does).
func (e *kaEnv) assertLogsClean(t *testing.T) {
	t.Helper()
	logs := e.logs.String()
	if strings.Contains(logs, adminToken) || strings.Contains(logs, kubeadapt.SecretPrefix) {
		t.Errorf("logs leak a secret:\n%s", logs)
	}
}

// mint mints a key named name with scopes through the issuer.
func (e *kaEnv) mint(t *testing.T, name string, scopes ...string) rotator.Minted {
	t.Helper()
	m, err := e.issuer.Mint(context.Background(), mintRequest(name, scopes...))
	if err != nil {
		t.Fatalf("Mint(%s): %v", name, err)
	}
	return m
}

func mintRequest(name string, scopes ...string) rotator.MintRequest {
	sc := make([]any, len(scopes))
	for i, s := range scopes {
		sc[i] = s
	}
	return rotator.MintRequest{
		Key: "ci", Name: name, Generation: 1, RotationID: "rot-1",
		Params: map[string]any{"scopes": sc},
	}
}

// dataStatus calls GET /v1/clusters with key and returns the status.
func (e *kaEnv) dataStatus(t *testing.T, key rotator.Secret) int {
	t.Helper()
	req, _ := nethttp.NewRequest(nethttp.MethodGet, e.url+"/v1/clusters", nil)
	req.Header.Set("Authorization", "Bearer "+key.Reveal())
	resp, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("data API: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// exampleConfig decodes examples/kubeadapt-issuer.yaml the way app does
// (config.Decode over DefaultConfig, name and type stripped, unknown fields
// rejected) and points it at baseURL.
func exampleConfig(t *testing.T, baseURL string) rkhttp.Config {
	t.Helper()
	raw, err := os.ReadFile("../../examples/kubeadapt-issuer.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Issuers []map[string]any `yaml:"issuers"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("example: %v", err)
	}
	if len(doc.Issuers) != 1 || doc.Issuers[0]["type"] != "http" {
		t.Fatalf("example: want one issuer of type http, got %v", doc.Issuers)
	}
	m := doc.Issuers[0]
	delete(m, "name")
	delete(m, "type")
	cfg := rkhttp.DefaultConfig()
	if err := config.Decode(m, &cfg, "issuers[0]"); err != nil {
		t.Fatalf("example: decode: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("example: %v", err)
	}
	cfg.BaseURL = baseURL
	return cfg
}

// assertNoLeak fails if err's text holds any of the secrets.
func assertNoLeak(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range append(secrets, adminToken) {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("error leaks a secret: %v", err)
		}
	}
}

// assertClass checks an error's classification.
func assertClass(t *testing.T, err error, permanent bool, reason rotator.Reason, contains ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want an error (permanent=%v reason=%s), got nil", permanent, reason)
	}
	if got := rotator.IsPermanent(err); got != permanent {
		t.Errorf("IsPermanent = %v, want %v (%v)", got, permanent, err)
	}
	if got := rotator.ReasonOf(err); got != reason {
		t.Errorf("ReasonOf = %s, want %s (%v)", got, reason, err)
	}
	for _, c := range contains {
		if !strings.Contains(err.Error(), c) {
			t.Errorf("error %q does not contain %q", err, c)
		}
	}
}

// retryAfter extracts the upstream's Retry-After from an error.
func retryAfter(err error) time.Duration {
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		return ra.RetryAfter()
	}
	return 0
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
