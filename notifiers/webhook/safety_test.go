package webhook

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// TestNoSecretInErrorsOrLogs drives every failure path and checks that
// neither the signing secret nor the URL's userinfo-like path or query
// tokens appear in an error or a log line.
func TestNoSecretInErrorsOrLogs(t *testing.T) {
	const pathToken, queryToken = "T0KEN-IN-PATH", "T0KEN-IN-QUERY"
	tests := map[string]struct {
		script []response
	}{
		"5xx":       {script: []response{{status: 503}}},
		"4xx":       {script: []response{{status: 403}}},
		"429":       {script: []response{{status: 429, retryAfter: "3600"}}},
		"redirect":  {script: []response{{status: 307}}},
		"delivered": {script: []response{{status: 200}}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rc := newReceiver(t, tc.script...)
			var logs bytes.Buffer
			n := newNotifier(t, config(t, rc.srv.URL+"/services/"+pathToken+"?token="+queryToken), &logs)
			err := n.Notify(context.Background(), testEvent())
			var text string
			if err != nil {
				text = err.Error()
				if !strings.Contains(text, "webhook: POST http://127.0.0.1") {
					t.Errorf("error does not name the adapter and host: %v", err)
				}
			}
			for _, leak := range []string{testSecret, pathToken, queryToken, "token="} {
				if strings.Contains(text, leak) || strings.Contains(logs.String(), leak) {
					t.Fatalf("%q leaked: err=%q logs=%q", leak, text, logs.String())
				}
			}
			for _, r := range rc.requests() {
				if bytes.Contains(r.body, []byte(testSecret)) {
					t.Fatal("secret in the request body")
				}
				for k, v := range r.header {
					if strings.Contains(strings.Join(v, " "), testSecret) {
						t.Fatalf("secret in header %s", k)
					}
				}
			}
		})
	}
}

// TestContextCancelStopsTheAttempt: a cancelled ctx (the daemon shutting
// down) ends the POST at once with an error that wraps context.Canceled.
func TestContextCancelStopsTheAttempt(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rc := newReceiver(t, response{status: 503})
	rc.onEnter = func(r *http.Request) {
		cancel()
		<-r.Context().Done() // hold the request until the client goes away
	}
	n, err := New(config(t, rc.srv.URL), nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- n.Notify(ctx, testEvent()) }()
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Notify did not return after ctx was cancelled")
	}
	if !errors.Is(err, context.Canceled) || rotator.IsPermanent(err) {
		t.Fatalf("err = %v, want a retryable context.Canceled", err)
	}
	if got := len(rc.requests()); got != 1 {
		t.Fatalf("%d requests, want 1", got)
	}
}

func TestTLSCAFile(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(t.TempDir(), "junk.pem")
	if err := os.WriteFile(notPEM, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		caFile        string
		wantNewErr    string
		wantPermanent bool
	}{
		"trusted CA":       {caFile: caFile},
		"system roots":     {caFile: "", wantPermanent: true},
		"not a PEM bundle": {caFile: notPEM, wantNewErr: "tls.ca_file: no PEM certificate"},
		"missing file":     {caFile: filepath.Join(t.TempDir(), "nope.pem"), wantNewErr: "tls.ca_file:"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := config(t, srv.URL)
			cfg.TLS.CAFile = tc.caFile
			n, err := New(cfg, nil)
			if tc.wantNewErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantNewErr) {
					t.Fatalf("New err = %v, want %q", err, tc.wantNewErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			err = n.Notify(context.Background(), testEvent())
			if tc.wantPermanent {
				if err == nil || !rotator.IsPermanent(err) {
					t.Fatalf("err = %v, want a permanent certificate error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSecretFileReread checks that a rotated secret file signs the next
// event without a restart.
func TestSecretFileReread(t *testing.T) {
	rc := newReceiver(t)
	cfg := config(t, rc.srv.URL)
	n := newNotifier(t, cfg, nil)
	if err := os.WriteFile(cfg.SecretFile, []byte("rotated-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := n.Notify(context.Background(), testEvent()); err != nil {
		t.Fatal(err)
	}
	r := rc.requests()[0]
	h := r.header
	if err := Verify("rotated-secret", h.Get("webhook-id"), h.Get("webhook-timestamp"), r.body, h.Get("webhook-signature"), time.Now(), 0); err != nil {
		t.Fatalf("not signed with the new secret: %v", err)
	}
}

func TestNewSecretErrors(t *testing.T) {
	tests := map[string]struct {
		mod     func(c *Config)
		wantErr string
	}{
		"unset env": {
			mod:     func(c *Config) { c.SecretFile, c.SecretEnv = "", "REKEY_WEBHOOK_TEST_UNSET" },
			wantErr: "REKEY_WEBHOOK_TEST_UNSET is not set",
		},
		"bad whsec": {
			mod:     func(c *Config) { c.SecretFile = secretFile(t, "whsec_!!notbase64!!") },
			wantErr: "not valid base64",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := config(t, "https://hooks.example.com/x?token=abc")
			tc.mod(&cfg)
			_, err := New(cfg, nil)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "notbase64") || strings.Contains(err.Error(), "token=abc") {
				t.Fatalf("error leaks the secret or the query: %v", err)
			}
		})
	}
}
