package kubeadapt_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/testing/kubeadapt"
)

const adminToken = "test-admin-token"

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type env struct {
	t     *testing.T
	s     *kubeadapt.Server
	url   string
	clock *fakeClock
}

func newEnv(t *testing.T) *env {
	t.Helper()
	clock := &fakeClock{now: t0}
	s := kubeadapt.New(kubeadapt.Options{AdminToken: adminToken, Clock: clock.Now})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return &env{t: t, s: s, url: ts.URL, clock: clock}
}

type response struct {
	code   int
	header http.Header
	body   []byte
}

// detail decodes the {"detail": …} of an error answer.
func (r response) detail(t *testing.T) string {
	t.Helper()
	var d struct {
		Detail *string `json:"detail"`
	}
	if err := json.Unmarshal(r.body, &d); err != nil || d.Detail == nil || *d.Detail == "" {
		t.Fatalf("body %q is not {\"detail\": …} (err %v)", r.body, err)
	}
	return *d.Detail
}

// do sends a request; auth is the whole Authorization header, "" for none.
func (e *env) do(method, path, auth string, body any) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return send(e.t, req)
}

func send(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: raw}
}

func (e *env) admin(method, path string, body any) response {
	e.t.Helper()
	return e.do(method, path, "Bearer "+adminToken, body)
}

func (e *env) get(path, key string) response {
	e.t.Helper()
	return e.do(http.MethodGet, path, "Bearer "+key, nil)
}

type created struct {
	kubeadapt.KeyInfo
	Secret string `json:"secret"`
}

// mint creates a key through the admin API.
func (e *env) mint(name string, scopes []string, clusters ...string) created {
	e.t.Helper()
	r := e.admin(http.MethodPost, "/admin/v1/api-keys", kubeadapt.KeyRequest{Name: name, Scopes: scopes, AllowedClusterIDs: clusters})
	if r.code != http.StatusCreated {
		e.t.Fatalf("mint %s: %d %s", name, r.code, r.body)
	}
	var c created
	if err := json.Unmarshal(r.body, &c); err != nil {
		e.t.Fatal(err)
	}
	return c
}

func decode[T any](t *testing.T, raw []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decode %q: %v", raw, err)
	}
	return v
}

type keyList struct {
	Data []kubeadapt.KeyInfo `json:"data"`
}

type clusterList struct {
	Data []kubeadapt.Cluster `json:"data"`
}

func clusterIDs(cs []kubeadapt.Cluster) []string {
	ids := []string{}
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	return ids
}
