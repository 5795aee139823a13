package exposure

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/internal/stdwebhooks"
	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/webhooks/internal/inbound"
	"github.com/rekeyhq/rekey/webhooks/internal/webhooktest"
)

const (
	secret       = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	otherSecret  = "whsec_dGhpcyBpcyBhbm90aGVyIHNlY3JldCBrZXk="
	token        = "ka_live_LEAKEDleakedLEAKEDleaked012345"
	unknownToken = "ka_live_UNKNOWNunknownUNKNOWNunknown0"
	secretEnv    = "REKEY_TEST_EXPOSURE_SECRET"
)

var t0 = time.Unix(1_750_000_000, 0)

const (
	siemEnv    = "REKEY_TEST_SIEM_SECRET"
	siemSecret = "siem-signing-secret-of-enough-bytes"
)

func signedCfg(s inbound.SignedConfig) Config {
	c := DefaultConfig()
	c.SignedConfig = s
	return c
}

type fixture struct {
	h      *Handler
	intake *webhooktest.Intake
	guard  *webhooktest.Guard
	logs   *webhooktest.Buffer
	now    time.Time
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	t.Setenv(secretEnv, secret)
	logger, logs := webhooktest.Logger()
	f := &fixture{
		intake: &webhooktest.Intake{KnownFingerprints: map[string]string{rotator.Fingerprint(token): "kubeadapt-prod"}},
		guard:  &webhooktest.Guard{},
		logs:   logs,
		now:    t0,
	}
	t.Setenv(siemEnv, siemSecret)
	cfg := DefaultConfig()
	cfg.SecretEnv = secretEnv
	// A second sender trusted for fingerprints, whose matches only contain.
	cfg.Sources = []Source{{Name: "siem", SecretEnv: siemEnv, SourceTrust: SourceTrust{Fingerprints: true, OnMatch: "contain", RatePerMinute: 3}}}
	h, err := New(cfg, f.intake, f.guard, logger)
	if err != nil {
		t.Fatal(err)
	}
	h.now = func() time.Time { return f.now }
	f.h = h
	return f
}

// signed builds a request signed with secret as message id sent at at.
func signed(t *testing.T, secret, id string, at time.Time, body string) *http.Request {
	t.Helper()
	k, err := stdwebhooks.ParseKey(secret)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, "/v1/events/exposure", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	k.SetHeaders(r.Header, id, at, []byte(body))
	return r
}

func (f *fixture) serve(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

func body(fields map[string]any) string {
	b, _ := json.Marshal(fields)
	return string(b)
}

func TestServeHTTP(t *testing.T) {
	valid := body(map[string]any{"token": token, "source": "splunk", "url": "https://logs.example.com/q?id=1", "type": "kubeadapt_api_key"})
	fp := rotator.Fingerprint(token)
	huge := `{"token":"` + token + `","url":"` + strings.Repeat("a", 1<<20) + `"}`
	tests := map[string]struct {
		req        func(t *testing.T) *http.Request
		wantStatus int
		wantBody   *response
		want       *rotator.ExposureReport // the report handed to the engine
	}{
		"known token": {
			req:        func(t *testing.T) *http.Request { return signed(t, secret, "msg_1", t0, valid) },
			wantStatus: http.StatusAccepted,
			wantBody:   &response{Accepted: true, Known: true},
			want: &rotator.ExposureReport{ID: "msg_1", Via: Via, Source: "splunk", URL: "https://logs.example.com/q?id=1",
				Fingerprint: fp, Type: "kubeadapt_api_key", ReceivedAt: t0, Proof: true},
		},
		"unknown token is not an error": {
			req: func(t *testing.T) *http.Request {
				return signed(t, secret, "msg_1", t0, body(map[string]any{"token": unknownToken}))
			},
			wantStatus: http.StatusAccepted,
			wantBody:   &response{Accepted: true},
			want:       &rotator.ExposureReport{ID: "msg_1", Via: Via, Fingerprint: rotator.Fingerprint(unknownToken), ReceivedAt: t0, Proof: true},
		},
		// A fingerprint is no proof of possession: anyone who can read
		// fingerprints (the database, a ledger) could revoke every key.
		"fingerprint from a source not trusted for them": {
			req: func(t *testing.T) *http.Request {
				return signed(t, secret, "msg_1", t0, body(map[string]any{"sha256": strings.ToUpper(fp), "key": "kubeadapt-prod"}))
			},
			wantStatus: http.StatusForbidden,
		},
		"fingerprint from a source trusted for them, which only contains": {
			req: func(t *testing.T) *http.Request {
				return signed(t, siemSecret, "msg_1", t0, body(map[string]any{"sha256": strings.ToUpper(fp), "key": "kubeadapt-prod"}))
			},
			wantStatus: http.StatusAccepted,
			wantBody:   &response{Accepted: true, Known: true},
			want:       &rotator.ExposureReport{ID: "msg_1", Via: "siem", Fingerprint: fp, KeyHint: "kubeadapt-prod", ReceivedAt: t0, ContainOnly: true},
		},
		"token quoted in the url is redacted": {
			req: func(t *testing.T) *http.Request {
				return signed(t, secret, "msg_1", t0, body(map[string]any{"token": token, "url": "https://logs/?q=" + token}))
			},
			wantStatus: http.StatusAccepted,
			wantBody:   &response{Accepted: true, Known: true},
			want:       &rotator.ExposureReport{ID: "msg_1", Via: Via, URL: "https://logs/?q=<redacted>", Fingerprint: fp, ReceivedAt: t0, Proof: true},
		},
		"timestamp at the tolerance": {
			req:        func(t *testing.T) *http.Request { return signed(t, secret, "msg_1", t0.Add(-5*time.Minute), valid) },
			wantStatus: http.StatusAccepted,
		},
		"wrong secret": {
			req:        func(t *testing.T) *http.Request { return signed(t, otherSecret, "msg_1", t0, valid) },
			wantStatus: http.StatusUnauthorized,
		},
		"tampered body": {
			req: func(t *testing.T) *http.Request {
				r := signed(t, secret, "msg_1", t0, valid)
				tampered := strings.Replace(valid, "splunk", "spl0nk", 1)
				r.Body, r.ContentLength = ioNopCloser(tampered), int64(len(tampered))
				return r
			},
			wantStatus: http.StatusUnauthorized,
		},
		"signature of another id": {
			req: func(t *testing.T) *http.Request {
				r := signed(t, secret, "msg_1", t0, valid)
				r.Header.Set(stdwebhooks.HeaderID, "msg_2")
				return r
			},
			wantStatus: http.StatusUnauthorized,
		},
		"stale timestamp": {
			req: func(t *testing.T) *http.Request {
				return signed(t, secret, "msg_1", t0.Add(-5*time.Minute-time.Second), valid)
			},
			wantStatus: http.StatusUnauthorized,
		},
		"timestamp from the future": {
			req:        func(t *testing.T) *http.Request { return signed(t, secret, "msg_1", t0.Add(6*time.Minute), valid) },
			wantStatus: http.StatusUnauthorized,
		},
		"missing signature": {
			req: func(t *testing.T) *http.Request {
				r := signed(t, secret, "msg_1", t0, valid)
				r.Header.Del(stdwebhooks.HeaderSignature)
				return r
			},
			wantStatus: http.StatusUnauthorized,
		},
		"missing id": {
			req: func(t *testing.T) *http.Request {
				r := signed(t, secret, "msg_1", t0, valid)
				r.Header.Del(stdwebhooks.HeaderID)
				return r
			},
			wantStatus: http.StatusUnauthorized,
		},
		"missing timestamp": {
			req: func(t *testing.T) *http.Request {
				r := signed(t, secret, "msg_1", t0, valid)
				r.Header.Del(stdwebhooks.HeaderTimestamp)
				return r
			},
			wantStatus: http.StatusUnauthorized,
		},
		"unsigned": {
			req: func(t *testing.T) *http.Request {
				r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(valid))
				r.Header.Set("Content-Type", "application/json")
				return r
			},
			wantStatus: http.StatusUnauthorized,
		},
		"oversize body": {
			req:        func(t *testing.T) *http.Request { return signed(t, secret, "msg_1", t0, huge) },
			wantStatus: http.StatusRequestEntityTooLarge,
		},
		"malformed JSON": {
			req:        func(t *testing.T) *http.Request { return signed(t, secret, "msg_1", t0, `{"token":"`+token+`"`) },
			wantStatus: http.StatusBadRequest,
		},
		"unknown field": {
			req: func(t *testing.T) *http.Request {
				return signed(t, secret, "msg_1", t0, `{"token":"`+token+`","secret":"x"}`)
			},
			wantStatus: http.StatusBadRequest,
		},
		"both token and sha256": {
			req: func(t *testing.T) *http.Request {
				return signed(t, secret, "msg_1", t0, body(map[string]any{"token": token, "sha256": fp}))
			},
			wantStatus: http.StatusBadRequest,
		},
		"neither token nor sha256": {
			req:        func(t *testing.T) *http.Request { return signed(t, secret, "msg_1", t0, `{"source":"x"}`) },
			wantStatus: http.StatusBadRequest,
		},
		"sha256 not hex": {
			req:        func(t *testing.T) *http.Request { return signed(t, secret, "msg_1", t0, `{"sha256":"`+token+`"}`) },
			wantStatus: http.StatusBadRequest,
		},
		"token of the wrong type": {
			req:        func(t *testing.T) *http.Request { return signed(t, secret, "msg_1", t0, `{"token":["`+token+`"]}`) },
			wantStatus: http.StatusBadRequest,
		},
		"wrong content type": {
			req: func(t *testing.T) *http.Request {
				r := signed(t, secret, "msg_1", t0, valid)
				r.Header.Set("Content-Type", "text/plain")
				return r
			},
			wantStatus: http.StatusUnsupportedMediaType,
		},
		"GET": {
			req: func(t *testing.T) *http.Request {
				r := signed(t, secret, "msg_1", t0, valid)
				r.Method = http.MethodGet
				return r
			},
			wantStatus: http.StatusMethodNotAllowed,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			w := f.serve(tc.req(t))
			if w.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.wantStatus, w.Body)
			}
			got := f.intake.Exposures()
			if tc.wantStatus != http.StatusAccepted {
				if len(got) != 0 || f.guard.Calls() != 0 {
					t.Fatalf("refused request had side effects: %d intake calls, %d guard calls", len(got), f.guard.Calls())
				}
				var e struct{ Error string }
				if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
					t.Fatalf("error body %q", w.Body)
				}
			} else {
				if len(got) != 1 {
					t.Fatalf("intake called %d times, want 1", len(got))
				}
				recs := f.guard.Records(ReplayNamespace)
				if len(recs) != 1 {
					t.Fatalf("replay guard records %v", recs)
				}
				for id, until := range recs {
					if !strings.HasPrefix(id, "msg_1.") || !until.Equal(t0.Add(10*time.Minute)) {
						t.Fatalf("replay record %q until %v", id, until)
					}
				}
			}
			if tc.want != nil && got[0] != *tc.want {
				t.Fatalf("report\n got %+v\nwant %+v", got[0], *tc.want)
			}
			if tc.wantBody != nil {
				var res response
				if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil || res != *tc.wantBody {
					t.Fatalf("body %s, want %+v", w.Body, *tc.wantBody)
				}
			}
			webhooktest.AssertNoLeak(t, token, map[string]string{"response": w.Body.String(), "logs": f.logs.String()})
			webhooktest.AssertNoLeak(t, unknownToken, map[string]string{"response": w.Body.String(), "logs": f.logs.String()})
		})
	}
}

func ioNopCloser(s string) *nopCloser { return &nopCloser{strings.NewReader(s)} }

type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }

func TestReplayAndRetry(t *testing.T) {
	f := newFixture(t)
	b := body(map[string]any{"token": token})
	first := signed(t, secret, "msg_1", t0, b)
	replay := signed(t, secret, "msg_1", t0, b)
	if w := f.serve(first); w.Code != http.StatusAccepted {
		t.Fatalf("first: %d %s", w.Code, w.Body)
	}
	// The same signed message again: a replay, refused before the engine.
	f.now = t0.Add(time.Minute)
	if w := f.serve(replay); w.Code != http.StatusConflict {
		t.Fatalf("replay: %d %s", w.Code, w.Body)
	}
	if n := len(f.intake.Exposures()); n != 1 {
		t.Fatalf("intake called %d times after a replay, want 1", n)
	}
	// The sender's own retry (same webhook-id, fresh timestamp): not an
	// error; the engine sees the same report ID and de-duplicates.
	w := f.serve(signed(t, secret, "msg_1", f.now, b))
	var res response
	if err := json.Unmarshal(w.Body.Bytes(), &res); w.Code != http.StatusAccepted || err != nil || !res.Duplicate {
		t.Fatalf("retry: %d %s", w.Code, w.Body)
	}
	got := f.intake.Exposures()
	if len(got) != 2 || got[1].ID != got[0].ID {
		t.Fatalf("retry reached the engine as %+v", got)
	}
}

func TestEngineFailures(t *testing.T) {
	b := body(map[string]any{"token": token})
	t.Run("intake error answers 503 and a retry is accepted", func(t *testing.T) {
		f := newFixture(t)
		fail := true
		f.intake.ExposureFunc = func(_ context.Context, r rotator.ExposureReport) (rotator.ExposureResult, error) {
			if fail {
				return rotator.ExposureResult{}, errors.New("store: database is locked")
			}
			return rotator.ExposureResult{Known: true}, nil
		}
		w := f.serve(signed(t, secret, "msg_1", t0, b))
		if w.Code != http.StatusServiceUnavailable {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		fail = false
		f.now = t0.Add(5 * time.Second)
		if w := f.serve(signed(t, secret, "msg_1", f.now, b)); w.Code != http.StatusAccepted {
			t.Fatalf("retry: %d %s", w.Code, w.Body)
		}
		webhooktest.AssertNoLeak(t, token, map[string]string{"logs": f.logs.String()})
	})
	t.Run("replay guard error answers 503 without calling the engine", func(t *testing.T) {
		f := newFixture(t)
		f.guard.Err = errors.New("store down")
		if w := f.serve(signed(t, secret, "msg_1", t0, b)); w.Code != http.StatusServiceUnavailable {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		if n := len(f.intake.Exposures()); n != 0 {
			t.Fatalf("intake called %d times", n)
		}
	})
	t.Run("the engine is called even if the sender hung up", func(t *testing.T) {
		f := newFixture(t)
		ctx, cancel := context.WithCancel(context.Background())
		r := signed(t, secret, "msg_1", t0, b).WithContext(ctx)
		f.intake.ExposureFunc = func(ctx context.Context, _ rotator.ExposureReport) (rotator.ExposureResult, error) {
			cancel()
			return rotator.ExposureResult{}, ctx.Err()
		}
		if w := f.serve(r); w.Code != http.StatusAccepted {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
	})
}

func TestNew(t *testing.T) {
	dir := t.TempDir()
	weak := filepath.Join(dir, "weak")
	if err := os.WriteFile(weak, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good")
	if err := os.WriteFile(good, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("REKEY_TEST_BAD_WHSEC", "whsec_***")
	tests := map[string]struct {
		cfg     Config
		wantErr string
	}{
		"secret file":    {cfg: signedCfg(inbound.SignedConfig{SecretFile: good, Tolerance: time.Minute})},
		"no secret":      {cfg: signedCfg(inbound.SignedConfig{Tolerance: time.Minute}), wantErr: "secret_env: required"},
		"both":           {cfg: signedCfg(inbound.SignedConfig{SecretEnv: "X", SecretFile: good, Tolerance: time.Minute}), wantErr: "secret_env: set only one"},
		"unset env":      {cfg: signedCfg(inbound.SignedConfig{SecretEnv: "REKEY_TEST_UNSET_VARIABLE", Tolerance: time.Minute}), wantErr: "is not set"},
		"weak secret":    {cfg: signedCfg(inbound.SignedConfig{SecretFile: weak, Tolerance: time.Minute}), wantErr: "use at least 16"},
		"bad whsec":      {cfg: signedCfg(inbound.SignedConfig{SecretEnv: "REKEY_TEST_BAD_WHSEC", Tolerance: time.Minute}), wantErr: "not valid base64"},
		"zero tolerance": {cfg: signedCfg(inbound.SignedConfig{SecretFile: good}), wantErr: "tolerance: must be between"},
		"huge tolerance": {cfg: signedCfg(inbound.SignedConfig{SecretFile: good, Tolerance: 2 * time.Hour}), wantErr: "tolerance: must be between"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := New(tc.cfg, &webhooktest.Intake{}, &webhooktest.Guard{}, nil)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "MfKQ9r8") || strings.Contains(err.Error(), "short") {
				t.Fatalf("error leaks the secret: %v", err)
			}
		})
	}
	if _, err := New(signedCfg(inbound.SignedConfig{SecretFile: good, Tolerance: time.Minute}), nil, &webhooktest.Guard{}, nil); err == nil {
		t.Fatal("nil intake accepted")
	}
}

// TestThroughServer exercises the handler behind a real listener, as the
// daemon mounts it.
func TestThroughServer(t *testing.T) {
	f := newFixture(t)
	f.h.now = time.Now
	mux := http.NewServeMux()
	mux.Handle(Route, f.h)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	k, _ := stdwebhooks.ParseKey(secret)
	b := []byte(body(map[string]any{"token": token}))
	for i := range 3 {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/events/exposure", bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		k.SetHeaders(req.Header, "msg_"+strconv.Itoa(i), time.Now(), b)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if n := len(f.intake.Exposures()); n != 3 {
		t.Fatalf("intake called %d times", n)
	}
}

// Each source has its own budget: past it, 429 with Retry-After and no
// side effect; another source is not affected.
func TestRatePerSource(t *testing.T) {
	f := newFixture(t)
	send := func(secret, id string) *httptest.ResponseRecorder {
		return f.serve(signed(t, secret, id, t0, body(map[string]any{"token": unknownToken})))
	}
	for i := range 3 {
		if w := send(siemSecret, fmt.Sprint("s", i)); w.Code != http.StatusAccepted {
			t.Fatalf("report %d: %d %s", i, w.Code, w.Body)
		}
	}
	w := send(siemSecret, "s3")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Fatalf("over the rate: %d (Retry-After %q), want 429 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
	if n := len(f.intake.Exposures()); n != 3 {
		t.Fatalf("%d reports reached the engine, want 3", n)
	}
	if w := send(secret, "g0"); w.Code != http.StatusAccepted {
		t.Fatalf("another source was throttled too: %d", w.Code)
	}
	f.now = t0.Add(time.Minute)
	if w := send(siemSecret, "s4"); w.Code != http.StatusAccepted {
		t.Fatalf("a minute later: %d", w.Code)
	}
}
