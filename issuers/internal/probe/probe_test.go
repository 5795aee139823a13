package probe_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/rekeyhq/rekey/issuers/internal/probe"
	"github.com/rekeyhq/rekey/rotator"
)

const secret = "sk_test_abcdefghijklmnopqrstuvwxyz0123"

// server answers status (from the path) and records the last request.
type server struct {
	*httptest.Server
	mu   sync.Mutex
	last *http.Request
}

func newServer(t *testing.T) *server {
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.last = r
		s.mu.Unlock()
		switch r.URL.Path {
		case "/ok":
			if r.Header.Get("X-Api-Key") != secret && r.Header.Get("Authorization") != "Bearer "+secret {
				w.WriteHeader(http.StatusUnauthorized)
			}
		case "/redirect":
			http.Redirect(w, r, "/ok", http.StatusFound)
		case "/503":
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/500":
			w.WriteHeader(http.StatusInternalServerError)
		case "/404":
			w.WriteHeader(http.StatusNotFound)
		case "/echo":
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte("you sent " + r.Header.Get("Authorization")))
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func TestCheck(t *testing.T) {
	s := newServer(t)
	base, _ := url.Parse(s.URL)
	tests := map[string]struct {
		cfg       probe.Config
		base      *url.URL
		secret    string
		ok        bool
		permanent bool
		reason    rotator.Reason
		contains  string
	}{
		"default bearer 2xx":        {cfg: probe.Config{URL: "/ok"}, base: base, secret: secret, ok: true},
		"absolute url":              {cfg: probe.Config{URL: s.URL + "/ok"}, secret: secret, ok: true},
		"custom header":             {cfg: probe.Config{URL: "/ok", Header: "X-Api-Key", Value: "{{.Secret}}"}, base: base, secret: secret, ok: true},
		"wrong key 401":             {cfg: probe.Config{URL: "/ok"}, base: base, secret: "nope-nope-nope", permanent: true, reason: rotator.ReasonAuth, contains: "HTTP 401 Unauthorized: the credential was refused"},
		"body echo never quoted":    {cfg: probe.Config{URL: "/echo"}, base: base, secret: secret, permanent: true, reason: rotator.ReasonAuth, contains: "HTTP 401"},
		"503 inconclusive":          {cfg: probe.Config{URL: "/503"}, base: base, secret: secret, reason: rotator.ReasonTransient, contains: "inconclusive (retry after 7s)"},
		"500 in not mode retryable": {cfg: probe.Config{URL: "/500", Not: []any{401}}, base: base, secret: secret, reason: rotator.ReasonTransient},
		"404 passes not 401":        {cfg: probe.Config{URL: "/404", Not: []any{401}}, base: base, secret: secret, ok: true},
		"404 fails expect":          {cfg: probe.Config{URL: "/404", Expect: []any{200}}, base: base, secret: secret, permanent: true, reason: rotator.ReasonInvalid, contains: "expected 200"},
		"500 expected":              {cfg: probe.Config{URL: "/500", Expect: []any{"5xx"}}, base: base, secret: secret, ok: true},
		"redirect not followed":     {cfg: probe.Config{URL: "/redirect"}, base: base, secret: secret, permanent: true, reason: rotator.ReasonInvalid, contains: "HTTP 302"},
		"relative without base":     {cfg: probe.Config{URL: "/ok"}, secret: secret, permanent: true, reason: rotator.ReasonInvalid, contains: "absolute http(s) URL"},
		"param in url":              {cfg: probe.Config{URL: "{{.Params.api}}/ok"}, secret: secret, ok: true},
		"missing param":             {cfg: probe.Config{URL: "{{.Params.nope}}/ok"}, secret: secret, permanent: true, reason: rotator.ReasonInvalid, contains: "missing value"},
		"line break in secret":      {cfg: probe.Config{URL: "/ok"}, base: base, secret: secret + "\r\nX-Evil: 1", permanent: true, reason: rotator.ReasonInvalid, contains: "verify.value does not render a valid header value"},
		"empty secret":              {cfg: probe.Config{URL: "/ok"}, base: base, secret: "", permanent: true, reason: rotator.ReasonInvalid, contains: "empty secret"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := probe.New(tc.cfg, "test", tc.base)
			if err != nil {
				t.Fatal(err)
			}
			err = p.Check(context.Background(), "k", rotator.NewSecret(tc.secret), map[string]any{"api": s.URL})
			if tc.secret != "" && err != nil && strings.Contains(err.Error(), tc.secret) {
				t.Errorf("error leaks the secret: %v", err)
			}
			if tc.ok {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if err == nil || rotator.IsPermanent(err) != tc.permanent || rotator.ReasonOf(err) != tc.reason || !strings.Contains(err.Error(), tc.contains) {
				t.Fatalf("Check = %v (permanent %v, %s), want permanent %v, %s, containing %q",
					err, rotator.IsPermanent(err), rotator.ReasonOf(err), tc.permanent, tc.reason, tc.contains)
			}
		})
	}
}

func TestExtraHeaders(t *testing.T) {
	s := newServer(t)
	p, err := probe.New(probe.Config{URL: s.URL + "/ok", Method: "head", Headers: map[string]string{"X-Key": "{{.Key}}"}}, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Check(context.Background(), "ci", rotator.NewSecret(secret), nil); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last.Method != http.MethodHead || s.last.Header.Get("X-Key") != "ci" {
		t.Errorf("request = %s with X-Key %q", s.last.Method, s.last.Header.Get("X-Key"))
	}
}
