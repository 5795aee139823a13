package kubeadapt

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
	kaserver "github.com/rekeyhq/rekey/testing/kubeadapt"
)

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

// env is the Kubeadapt stand-in and a fake clock for the source.
type env struct {
	ka    *kaserver.Server
	url   string
	clock *fakeClock
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ka := kaserver.New(kaserver.Options{AdminToken: "test-admin"})
	ts := httptest.NewServer(ka)
	t.Cleanup(ts.Close)
	return &env{ka: ka, url: ts.URL, clock: &fakeClock{now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}}
}

// source builds a source for e (its base URL: the path defaults to /metrics).
func (e *env) source(t *testing.T, edit func(*Config)) *Source {
	t.Helper()
	c := DefaultConfig()
	c.URL = e.url
	if edit != nil {
		edit(&c)
	}
	s, err := New(c, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s.now = e.clock.Now
	return s
}

func (e *env) key(t *testing.T, name string) (id, secret string) {
	t.Helper()
	k, secret, err := e.ka.CreateKey(kaserver.KeyRequest{Name: name, Scopes: []string{kaserver.ScopeClustersRead}})
	if err != nil {
		t.Fatal(err)
	}
	return k.ID, secret
}

// call makes n data API requests with token and checks their status.
func (e *env) call(t *testing.T, token string, n, want int) {
	t.Helper()
	for range n {
		req, _ := http.NewRequest(http.MethodGet, e.url+"/v1/clusters", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("data API: status %d, want %d", resp.StatusCode, want)
		}
	}
}

func poll(s *Source, q rotator.TrafficQuery) (rotator.Reading, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.Unauthorized(ctx, q)
}

// wantRate fails unless the poll reads want.
func wantRate(t *testing.T, s *Source, q rotator.TrafficQuery, want float64, detail string) {
	t.Helper()
	r, err := poll(s, q)
	if err != nil || r.Value != want || !strings.Contains(r.Detail, detail) || r.At.IsZero() {
		t.Fatalf("got %+v, %v; want %g with detail %q", r, err, want, detail)
	}
}

// wantErr fails unless the poll is an error containing want, retryable
// unless permanent says otherwise.
func wantErr(t *testing.T, s *Source, q rotator.TrafficQuery, permanent bool, want string) {
	t.Helper()
	_, err := poll(s, q)
	if err == nil || !strings.Contains(err.Error(), want) || rotator.IsPermanent(err) != permanent {
		t.Fatalf("got %v; want an error (permanent %v) containing %q", err, permanent, want)
	}
}

// TestRateOfOldKey follows one rotation: the old key is used, retired,
// revoked and its consumer keeps failing, then stops.
func TestRateOfOldKey(t *testing.T) {
	e := newEnv(t)
	oldID, oldSecret := e.key(t, "billing-v1")
	newID, newSecret := e.key(t, "billing-v2")
	e.call(t, oldSecret, 3, http.StatusOK)
	s := e.source(t, nil)
	q := rotator.TrafficQuery{Key: "billing", OldID: oldID, OldName: "billing-v1", NewID: newID, NewName: "billing-v2"}

	wantErr(t, s, q, false, "baseline established (0 401 answers for key_id "+oldID+" (billing-v1) in 0 series)")
	wantErr(t, s, q, false, "polled again at the same instant")
	e.clock.Advance(10 * time.Second)
	wantRate(t, s, q, 0, "0 401 answers for key_id "+oldID+" (billing-v1) in 10s")

	e.call(t, newSecret, 4, http.StatusOK) // the new key's traffic is not the old key's
	e.ka.Revoke(oldID)
	e.call(t, oldSecret, 5, http.StatusUnauthorized)
	e.call(t, "ka_live_"+strings.Repeat("x", 32), 2, http.StatusUnauthorized) // unknown keys: not matched
	e.clock.Advance(10 * time.Second)
	wantRate(t, s, q, 0.5, "5 401 answers")

	e.clock.Advance(5 * time.Second)
	wantRate(t, s, q, 0, "0 401 answers")

	e.call(t, oldSecret, 1, http.StatusUnauthorized)
	e.clock.Advance(2 * time.Hour) // too long ago: a fresh baseline, not an average
	wantErr(t, s, q, false, "baseline established (6 401 answers")
}

func TestMatchAndCount(t *testing.T) {
	tests := map[string]struct {
		edit func(*Config)
		want float64 // per second over 10s of: 2 old-key 200s, then revoked 3 old-key 401s, 4 unknown 401s
	}{
		"old id 401s":           {edit: nil, want: 0.3},
		"old id requests":       {edit: func(c *Config) { c.Count = CountRequests }, want: 0.5},
		"unknown 401s":          {edit: func(c *Config) { c.Match = []string{MatchUnknown} }, want: 0.4},
		"old id and unknown":    {edit: func(c *Config) { c.Match = []string{MatchOldID, MatchUnknown} }, want: 0.7},
		"everything of the two": {edit: func(c *Config) { c.Match = []string{MatchUnknown, MatchOldID}; c.Count = CountRequests }, want: 0.9},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			oldID, oldSecret := e.key(t, "billing-v1")
			_, newSecret := e.key(t, "billing-v2")
			// Seen before the baseline, so that no series is missing.
			e.call(t, oldSecret, 1, http.StatusOK)
			e.call(t, "garbage", 1, http.StatusUnauthorized)
			s := e.source(t, tc.edit)
			q := rotator.TrafficQuery{Key: "billing", OldID: oldID, OldName: "billing-v1"}
			wantErr(t, s, q, false, "baseline established")

			e.call(t, oldSecret, 2, http.StatusOK)
			e.call(t, newSecret, 6, http.StatusOK)
			e.ka.Revoke(oldID)
			e.call(t, oldSecret, 3, http.StatusUnauthorized)
			e.call(t, "garbage", 4, http.StatusUnauthorized)
			e.clock.Advance(10 * time.Second)
			wantRate(t, s, q, tc.want, "in 10s")
		})
	}
}

func TestNothingToMatch(t *testing.T) {
	tests := map[string]struct {
		edit func(*Config)
		q    rotator.TrafficQuery
		perm bool
		err  string // "" with empty_is_zero: a baseline, then zero
	}{
		"unknown old id": {
			q:   rotator.TrafficQuery{Key: "billing", OldID: "key_0000000000000000", OldName: "billing-v1"},
			err: `no kubeadapt_requests_total series for key_id "key_0000000000000000" (billing-v1)`,
		},
		"unknown old id, empty_is_zero": {
			edit: func(c *Config) { c.EmptyIsZero = true },
			q:    rotator.TrafficQuery{Key: "billing", OldID: "key_0000000000000000"},
		},
		"wrong metric": {
			edit: func(c *Config) { c.Metric = "kubeadapt_request_total" },
			q:    rotator.TrafficQuery{Key: "billing", OldID: "key_0000000000000000"},
			err:  "exposes no kubeadapt_request_total",
		},
		"wrong metric, empty_is_zero": {
			edit: func(c *Config) { c.Metric = "kubeadapt_request_total"; c.EmptyIsZero = true },
			q:    rotator.TrafficQuery{Key: "billing", OldID: "key_0000000000000000"},
		},
		"a gauge": {
			edit: func(c *Config) { c.Metric = "kubeadapt_api_keys" },
			q:    rotator.TrafficQuery{Key: "billing", OldID: "key_0000000000000000"},
			perm: true, err: "kubeadapt_api_keys is a gauge, want a counter",
		},
		"no old id recorded": {
			q:    rotator.TrafficQuery{Key: "billing", OldName: "billing-v1"},
			perm: true, err: "no issuer id recorded for the old credential billing-v1",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			_, secret := e.key(t, "other")
			e.call(t, secret, 1, http.StatusOK) // the counter exists
			s := e.source(t, tc.edit)
			if tc.err != "" {
				wantErr(t, s, tc.q, tc.perm, tc.err)
				return
			}
			wantErr(t, s, tc.q, false, "baseline established")
			e.clock.Advance(time.Second)
			wantRate(t, s, tc.q, 0, "0 401 answers")
		})
	}
}

func TestServerDown(t *testing.T) {
	e := newEnv(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	s := e.source(t, func(c *Config) { c.URL = srv.URL + "/metrics" })
	_, err := poll(s, rotator.TrafficQuery{Key: "k", OldID: "key_1"})
	if err == nil || rotator.IsPermanent(err) || rotator.ReasonOf(err) != rotator.ReasonTransient || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("got %v; want a transient connection error", err)
	}
}

// TestConcurrentPolls polls several keys at once (run with -race).
func TestConcurrentPolls(t *testing.T) {
	e := newEnv(t)
	s := e.source(t, nil)
	var ids []string
	for i := range 4 {
		id, secret := e.key(t, "k"+string(rune('a'+i)))
		e.call(t, secret, 1, http.StatusOK)
		ids = append(ids, id)
	}
	var wg sync.WaitGroup
	for round := range 3 {
		for i, id := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := poll(s, rotator.TrafficQuery{Key: "k" + string(rune('a'+i)), OldID: id})
				if round == 0 && (err == nil || !strings.Contains(err.Error(), "baseline")) {
					t.Errorf("first poll of %s: %v, want a baseline", id, err)
				}
			}()
		}
		wg.Wait()
		e.clock.Advance(time.Second)
	}
}
