package kubeadapt_test

import (
	"net/http"
	"testing"

	"github.com/rekeyhq/rekey/testing/kubeadapt"
)

func TestFailNext(t *testing.T) {
	tests := map[string]struct {
		n, status  int
		retryAfter string
		failures   int // requests that fail
	}{
		"503 twice":   {n: 2, status: http.StatusServiceUnavailable, retryAfter: "1", failures: 2},
		"429 once":    {n: 1, status: http.StatusTooManyRequests, retryAfter: "1", failures: 1},
		"500 thrice":  {n: 3, status: http.StatusInternalServerError, failures: 3},
		"502":         {n: 1, status: http.StatusBadGateway, failures: 1},
		"zero clears": {n: 0, status: http.StatusServiceUnavailable, failures: 0},
		"negative":    {n: -4, status: http.StatusServiceUnavailable, failures: 0},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			k := e.mint("k", []string{kubeadapt.ScopeClustersRead})
			e.s.FailNext(tt.n, tt.status)

			// Data traffic neither fails nor consumes the injected failures.
			if r := e.get("/v1/clusters", k.Secret); r.code != http.StatusOK {
				t.Fatalf("data API = %d during admin faults", r.code)
			}
			for i := range tt.failures {
				// Failures come before authentication, like a gateway's.
				auth := "Bearer " + adminToken
				if i%2 == 1 {
					auth = ""
				}
				r := e.do(http.MethodPost, "/admin/v1/api-keys", auth, kubeadapt.KeyRequest{Name: "n", Scopes: []string{"costs:read"}})
				if r.code != tt.status || r.header.Get("Retry-After") != tt.retryAfter {
					t.Fatalf("request %d = %d Retry-After=%q, want %d %q", i, r.code, r.header.Get("Retry-After"), tt.status, tt.retryAfter)
				}
				r.detail(t)
			}
			if n := len(e.s.Keys()); n != 1 {
				t.Errorf("failed requests created keys: %d", n)
			}
			if r := e.admin(http.MethodGet, "/admin/v1/api-keys", nil); r.code != http.StatusOK {
				t.Errorf("after %d failures: %d %s", tt.failures, r.code, r.body)
			}
		})
	}
}

func TestFailNextReplacesPending(t *testing.T) {
	e := newEnv(t)
	e.s.FailNext(5, http.StatusServiceUnavailable)
	e.s.FailNext(1, http.StatusTooManyRequests)
	if r := e.admin(http.MethodGet, "/admin/v1/api-keys", nil); r.code != http.StatusTooManyRequests {
		t.Fatalf("first = %d, want 429", r.code)
	}
	if r := e.admin(http.MethodGet, "/admin/v1/api-keys", nil); r.code != http.StatusOK {
		t.Fatalf("second = %d, want 200", r.code)
	}
}

func TestFailNextRejectsNonErrorStatus(t *testing.T) {
	for name, status := range map[string]int{"ok": 200, "redirect": 302, "too big": 600} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("FailNext(1, %d) did not panic", status)
				}
			}()
			kubeadapt.New(kubeadapt.Options{}).FailNext(1, status)
		})
	}
}

func TestSetAdminDown(t *testing.T) {
	e := newEnv(t)
	k := e.mint("k", []string{kubeadapt.ScopeClustersRead})
	e.s.FailNext(1, http.StatusTooManyRequests)
	e.s.SetAdminDown(true)

	routes := map[string]struct{ method, path string }{
		"list":   {http.MethodGet, "/admin/v1/api-keys"},
		"create": {http.MethodPost, "/admin/v1/api-keys"},
		"get":    {http.MethodGet, "/admin/v1/api-keys/" + k.ID},
		"revoke": {http.MethodPost, "/admin/v1/api-keys/" + k.ID + "/revoke"},
		"delete": {http.MethodDelete, "/admin/v1/api-keys/" + k.ID},
	}
	for name, rt := range routes {
		t.Run(name, func(t *testing.T) {
			r := e.admin(rt.method, rt.path, `{"name":"n","scopes":["costs:read"]}`)
			if r.code != http.StatusServiceUnavailable || r.header.Get("Retry-After") != "1" {
				t.Fatalf("%s %s = %d Retry-After=%q", rt.method, rt.path, r.code, r.header.Get("Retry-After"))
			}
			r.detail(t)
		})
	}
	if r := e.get("/v1/clusters", k.Secret); r.code != http.StatusOK {
		t.Errorf("data API while admin down = %d", r.code)
	}
	if r := e.do(http.MethodGet, "/metrics", "", nil); r.code != http.StatusOK {
		t.Errorf("metrics while admin down = %d", r.code)
	}
	if info, _ := e.s.Key(k.ID); info.Status != kubeadapt.StatusActive || len(e.s.Keys()) != 1 {
		t.Errorf("admin requests took effect while down")
	}

	e.s.SetAdminDown(false)
	// The pending failure survived the outage.
	if r := e.admin(http.MethodGet, "/admin/v1/api-keys", nil); r.code != http.StatusTooManyRequests {
		t.Fatalf("after outage = %d, want the pending 429", r.code)
	}
	if r := e.admin(http.MethodGet, "/admin/v1/api-keys", nil); r.code != http.StatusOK {
		t.Fatalf("after outage and failure = %d", r.code)
	}
}
