package consumer

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/internal/stdwebhooks"
	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/store/sqlite"
	"github.com/rekeyhq/rekey/store/sqlstore"
	"github.com/rekeyhq/rekey/webhooks/internal/webhooktest"
)

const (
	secret      = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	otherSecret = "whsec_dGhpcyBpcyBhbm90aGVyIHNlY3JldCBrZXk="
	secretEnv   = "REKEY_TEST_CONSUMER_SECRET"
	fpV2        = "2222222222222222222222222222222222222222222222222222222222222222"
)

type credList []*rotator.Credential

func (c credList) Credentials(context.Context, string) ([]*rotator.Credential, error) { return c, nil }

type fixture struct {
	h     *Handler
	store *sqlstore.Store
	logs  *webhooktest.Buffer
	now   time.Time
}

func newFixture(t *testing.T, mutate func(*Config)) *fixture {
	t.Helper()
	t.Setenv(secretEnv, secret)
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "rekey.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	creds := credList{
		{Key: "api", Generation: 1, State: rotator.CredPrevious, Fingerprint: strings.Repeat("1", 64)},
		{Key: "api", Generation: 2, State: rotator.CredCurrent, Fingerprint: fpV2},
	}
	cfg := DefaultConfig()
	cfg.SecretEnv = secretEnv
	if mutate != nil {
		mutate(&cfg)
	}
	logger, logs := webhooktest.Logger()
	h, err := New(cfg, "consumers", func(k string) bool { return k == "api" }, creds, st, st, logger)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{h: h, store: st, logs: logs, now: time.Now().Truncate(time.Millisecond)}
	h.now = func() time.Time { return f.now }
	return f
}

func (f *fixture) post(t *testing.T, key, id, body string) *httptest.ResponseRecorder {
	t.Helper()
	k, err := stdwebhooks.ParseKey(key)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, "/v1/consumers/attest", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	k.SetHeaders(r.Header, id, f.now, []byte(body))
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

func (f *fixture) consumers(t *testing.T) []rotator.ConsumerSeen {
	t.Helper()
	list, err := f.store.Consumers(t.Context(), "api")
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// Every accepted form of an attestation records the generation it names;
// every refusal (bad signature, replay, malformed, unknown key, a
// generation the key never had) answers 4xx and records nothing.
func TestAttestations(t *testing.T) {
	tests := map[string]struct {
		secret, body string
		status       int
		want         int // generation recorded; 0: nothing
	}{
		"by name":             {secret, `{"key":"api","consumer":"billing-1","generation":"api-v2"}`, 202, 2},
		"by number":           {secret, `{"key":"api","consumer":"billing-1","generation":1}`, 202, 1},
		"by number string":    {secret, `{"key":"api","consumer":"billing-1","generation":"2"}`, 202, 2},
		"by fingerprint":      {secret, `{"key":"api","consumer":"vault-agent","fingerprint":"` + strings.ToUpper(fpV2) + `"}`, 202, 2},
		"wrong secret":        {otherSecret, `{"key":"api","consumer":"billing-1","generation":"api-v2"}`, 401, 0},
		"unknown key":         {secret, `{"key":"nope","consumer":"billing-1","generation":"nope-v2"}`, 404, 0},
		"never minted":        {secret, `{"key":"api","consumer":"billing-1","generation":"api-v3"}`, 422, 0},
		"unknown fingerprint": {secret, `{"key":"api","consumer":"billing-1","fingerprint":"` + strings.Repeat("3", 64) + `"}`, 422, 0},
		"both":                {secret, `{"key":"api","consumer":"b","generation":2,"fingerprint":"` + fpV2 + `"}`, 400, 0},
		"neither":             {secret, `{"key":"api","consumer":"b"}`, 400, 0},
		"bad consumer name":   {secret, `{"key":"api","consumer":"a b","generation":2}`, 400, 0},
		"another key's name":  {secret, `{"key":"api","consumer":"b","generation":"web-v2"}`, 422, 0},
		"the secret itself":   {secret, `{"key":"api","consumer":"b","generation":2,"secret":"ka_live_x"}`, 400, 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, nil)
			w := f.post(t, tc.secret, "msg_1", tc.body)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			got := f.consumers(t)
			if tc.want == 0 {
				if len(got) != 0 {
					t.Fatalf("a refused attestation was recorded: %+v", got)
				}
				return
			}
			var resp response
			if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || !resp.Accepted || resp.Generation != tc.want || resp.Current != 2 {
				t.Fatalf("answer %s (%v)", w.Body, err)
			}
			if len(got) != 1 || got[0].Generation != tc.want || got[0].Via != "consumers" || !got[0].LastSeen.Equal(f.now) {
				t.Fatalf("recorded %+v, want generation %d at %s", got, tc.want, f.now)
			}
		})
	}
}

// A replayed message is refused without touching the record; a later
// attestation moves the generation and last seen, and keeps first seen.
func TestReplayAndUpdate(t *testing.T) {
	f := newFixture(t, nil)
	first := f.now
	if w := f.post(t, secret, "msg_1", `{"key":"api","consumer":"billing","generation":1}`); w.Code != 202 {
		t.Fatalf("first: %d %s", w.Code, w.Body)
	}
	f.now = f.now.Add(time.Second)
	if w := f.post(t, secret, "msg_1", `{"key":"api","consumer":"billing","generation":1}`); w.Code != 202 && w.Code != 409 {
		t.Fatalf("same id, new timestamp: %d", w.Code)
	}
	k, _ := stdwebhooks.ParseKey(secret)
	body := `{"key":"api","consumer":"billing","generation":2}`
	mk := func() *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/v1/consumers/attest", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		k.SetHeaders(r.Header, "msg_2", f.now, []byte(body))
		return r
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, mk())
	if w.Code != 202 {
		t.Fatalf("update: %d %s", w.Code, w.Body)
	}
	w = httptest.NewRecorder()
	f.h.ServeHTTP(w, mk())
	if w.Code != http.StatusConflict {
		t.Fatalf("exact replay: %d, want 409", w.Code)
	}
	got := f.consumers(t)
	if len(got) != 1 || got[0].Generation != 2 || !got[0].FirstSeen.Equal(first) || !got[0].LastSeen.Equal(f.now) {
		t.Fatalf("after update: %+v", got)
	}
	webhooktest.AssertNoLeak(t, secret, map[string]string{"logs": f.logs.String()})
}

// Past rate_per_minute the sender gets 429 with Retry-After and nothing
// is recorded; past max_consumers_per_key a new consumer gets 409.
func TestLimits(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.RatePerMinute = 2; c.MaxConsumersPerKey = 1 })
	if w := f.post(t, secret, "m1", `{"key":"api","consumer":"a","generation":2}`); w.Code != 202 {
		t.Fatalf("first: %d %s", w.Code, w.Body)
	}
	if w := f.post(t, secret, "m2", `{"key":"api","consumer":"b","generation":2}`); w.Code != http.StatusConflict {
		t.Fatalf("a second consumer past the bound: %d %s", w.Code, w.Body)
	}
	w := f.post(t, secret, "m3", `{"key":"api","consumer":"c","generation":2}`)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Fatalf("past the rate: %d %v", w.Code, w.Header())
	}
	if got := f.consumers(t); len(got) != 1 || got[0].Name != "a" {
		t.Fatalf("recorded %+v", got)
	}
}

// Replays of one captured request (no secret needed) do not spend the
// rate budget that real consumers share.
func TestReplaysDoNotSpendTheBudget(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.RatePerMinute = 2 })
	k, _ := stdwebhooks.ParseKey(secret)
	body := `{"key":"api","consumer":"billing","generation":2}`
	captured := func() *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/v1/consumers/attest", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		k.SetHeaders(r.Header, "msg_captured", f.now, []byte(body))
		return r
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, captured())
	if w.Code != 202 {
		t.Fatalf("original: %d %s", w.Code, w.Body)
	}
	for range 5 {
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, captured())
		if w.Code != http.StatusConflict {
			t.Fatalf("replay: %d, want 409", w.Code)
		}
	}
	if w := f.post(t, secret, "msg_real", `{"key":"api","consumer":"search","generation":2}`); w.Code != 202 {
		t.Fatalf("a real consumer after the replays: %d %s", w.Code, w.Body)
	}
}
