package departure

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/internal/stdwebhooks"
	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/webhooks/internal/webhooktest"
)

const (
	secret      = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	otherSecret = "whsec_dGhpcyBpcyBhbm90aGVyIHNlY3JldCBrZXk="
	secretEnv   = "REKEY_TEST_DEPARTURE_SECRET"
)

var t0 = time.Unix(1_750_000_000, 0)

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
	f := &fixture{intake: &webhooktest.Intake{}, guard: &webhooktest.Guard{}, logs: logs, now: t0}
	f.intake.DepartureFunc = func(_ context.Context, r rotator.DepartureReport) (rotator.DepartureResult, error) {
		if r.Email == "ana@example.com" {
			return rotator.DepartureResult{Staged: []string{"billing-api", "ledger"}, Emergency: []string{"kubeadapt-prod"}, Rotations: []string{"r1", "r2"},
				Waiting: []string{"ledger"}}, nil
		}
		return rotator.DepartureResult{}, nil
	}
	cfg := DefaultConfig()
	cfg.SecretEnv = secretEnv
	h, err := New(cfg, "hr", f.intake, f.guard, logger)
	if err != nil {
		t.Fatal(err)
	}
	h.now = func() time.Time { return f.now }
	f.h = h
	return f
}

func signed(t testing.TB, secret, id string, at time.Time, body string) *http.Request {
	t.Helper()
	k, err := stdwebhooks.ParseKey(secret)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, "/v1/events/departure", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	k.SetHeaders(r.Header, id, at, []byte(body))
	return r
}

func (f *fixture) serve(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

func TestServeHTTP(t *testing.T) {
	valid := `{"email":"ana@example.com","user_id":"U024BE7LH","actor":"workday"}`
	tests := map[string]struct {
		req        func(t *testing.T) *http.Request
		wantStatus int
		wantBody   *response
		want       *rotator.DepartureReport
	}{
		"departure": {
			req:        func(t *testing.T) *http.Request { return signed(t, secret, "evt_1", t0, valid) },
			wantStatus: http.StatusAccepted,
			wantBody: &response{Accepted: true, Staged: []string{"billing-api", "ledger"}, Emergency: []string{"kubeadapt-prod"},
				Rotations: []string{"r1", "r2"}, Waiting: []string{"ledger"}},
			// Via: the webhook's name, the authenticated sender the engine
			// acts as; Actor only what the body claims.
			want: &rotator.DepartureReport{ID: "evt_1", Email: "ana@example.com", UserID: "U024BE7LH", Via: "hr", Actor: "workday", ReceivedAt: t0},
		},
		"user id only, nobody affected": {
			req:        func(t *testing.T) *http.Request { return signed(t, secret, "evt_1", t0, `{"user_id":"U1"}`) },
			wantStatus: http.StatusAccepted,
			wantBody:   &response{Accepted: true, Staged: []string{}, Emergency: []string{}, Rotations: []string{}, Waiting: []string{}},
			want:       &rotator.DepartureReport{ID: "evt_1", UserID: "U1", Via: "hr", ReceivedAt: t0},
		},
		"wrong secret": {
			req:        func(t *testing.T) *http.Request { return signed(t, otherSecret, "evt_1", t0, valid) },
			wantStatus: http.StatusUnauthorized,
		},
		"tampered body": {
			req: func(t *testing.T) *http.Request {
				r := signed(t, secret, "evt_1", t0, valid)
				other := strings.Replace(valid, "ana@", "bob@", 1)
				return withBody(r, other)
			},
			wantStatus: http.StatusUnauthorized,
		},
		"stale timestamp": {
			req:        func(t *testing.T) *http.Request { return signed(t, secret, "evt_1", t0.Add(-time.Hour), valid) },
			wantStatus: http.StatusUnauthorized,
		},
		"missing headers": {
			req: func(t *testing.T) *http.Request {
				r := signed(t, secret, "evt_1", t0, valid)
				r.Header.Del(stdwebhooks.HeaderSignature)
				r.Header.Del(stdwebhooks.HeaderTimestamp)
				return r
			},
			wantStatus: http.StatusUnauthorized,
		},
		"oversize body": {
			req: func(t *testing.T) *http.Request {
				return signed(t, secret, "evt_1", t0, `{"email":"a@b","actor":"`+strings.Repeat("x", 1<<20)+`"}`)
			},
			wantStatus: http.StatusRequestEntityTooLarge,
		},
		"malformed JSON": {
			req:        func(t *testing.T) *http.Request { return signed(t, secret, "evt_1", t0, `{"email":`) },
			wantStatus: http.StatusBadRequest,
		},
		"nobody named": {
			req:        func(t *testing.T) *http.Request { return signed(t, secret, "evt_1", t0, `{"actor":"workday"}`) },
			wantStatus: http.StatusBadRequest,
		},
		"not an email": {
			req:        func(t *testing.T) *http.Request { return signed(t, secret, "evt_1", t0, `{"email":"ana"}`) },
			wantStatus: http.StatusBadRequest,
		},
		"control characters": {
			req: func(t *testing.T) *http.Request {
				return signed(t, secret, "evt_1", t0, `{"user_id":"U1\n[INFO] forged"}`)
			},
			wantStatus: http.StatusBadRequest,
		},
		"claimed actor with terminal escapes": {
			req: func(t *testing.T) *http.Request {
				return signed(t, secret, "evt_1", t0, `{"email":"a@b","actor":"bob\u001b[2K\rall good"}`)
			},
			wantStatus: http.StatusBadRequest,
		},
		"claimed actor too long": {
			req: func(t *testing.T) *http.Request {
				return signed(t, secret, "evt_1", t0, `{"email":"a@b","actor":"`+strings.Repeat("x", 201)+`"}`)
			},
			wantStatus: http.StatusBadRequest,
		},
		"unknown field": {
			req: func(t *testing.T) *http.Request {
				return signed(t, secret, "evt_1", t0, `{"email":"a@b","name":"Ana"}`)
			},
			wantStatus: http.StatusBadRequest,
		},
		"wrong content type": {
			req: func(t *testing.T) *http.Request {
				r := signed(t, secret, "evt_1", t0, valid)
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				return r
			},
			wantStatus: http.StatusUnsupportedMediaType,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			w := f.serve(tc.req(t))
			if w.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.wantStatus, w.Body)
			}
			got := f.intake.Departures()
			if tc.wantStatus != http.StatusAccepted {
				if len(got) != 0 || f.guard.Calls() != 0 {
					t.Fatalf("refused request had side effects: %d intake calls, %d guard calls", len(got), f.guard.Calls())
				}
			} else if len(got) != 1 || len(f.guard.Records(ReplayNamespace)) != 1 {
				t.Fatalf("intake calls %d, guard records %v", len(got), f.guard.Records(ReplayNamespace))
			}
			if tc.want != nil && got[0] != *tc.want {
				t.Fatalf("report\n got %+v\nwant %+v", got[0], *tc.want)
			}
			if tc.wantBody != nil {
				var res response
				if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil || !reflect.DeepEqual(res, *tc.wantBody) {
					t.Fatalf("body %s, want %+v", w.Body, *tc.wantBody)
				}
			}
			webhooktest.AssertNoLeak(t, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", map[string]string{"response": w.Body.String(), "logs": f.logs.String()})
		})
	}
}

// A departure names a person, never rekey's own actors: one naming the
// scheduler, the bootstrap token or an exposure source would make rekey
// refuse its own rotations. It is a 400 naming the field, with no effect.
func TestReservedIdentitiesRefused(t *testing.T) {
	for _, body := range []string{`{"user_id":"scheduler"}`, `{"user_id":"Admin"}`, `{"user_id":"rekey"}`, `{"user_id":"exposure:github"}`,
		`{"user_id":"departure:hr"}`, `{"user_id":"break-glass:root@vm"}`, `{"user_id":"\u0455cheduler"}`, `{"email":"a@b","user_id":"scheduler"}`} {
		f := newFixture(t)
		w := f.serve(signed(t, secret, "evt_1", t0, body))
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "user_id") || !strings.Contains(w.Body.String(), "reserved") {
			t.Errorf("%s: status %d %s, want 400 naming user_id as reserved", body, w.Code, w.Body)
		}
		if len(f.intake.Departures()) != 0 || f.guard.Calls() != 0 {
			t.Errorf("%s: a refused departure reached the engine", body)
		}
	}
	f := newFixture(t)
	if w := f.serve(signed(t, secret, "evt_1", t0, `{"email":"admin@example.com","user_id":"U0ADMIN"}`)); w.Code != http.StatusAccepted {
		t.Errorf("a person whose address starts with admin@ was refused: %d %s", w.Code, w.Body)
	}
}

func withBody(r *http.Request, body string) *http.Request {
	r2 := httptest.NewRequest(r.Method, r.URL.Path, strings.NewReader(body))
	r2.Header = r.Header.Clone()
	return r2
}

func TestReplayRetryAndFailures(t *testing.T) {
	body := `{"email":"ana@example.com"}`
	t.Run("replay refused, retry de-duplicated by the engine", func(t *testing.T) {
		f := newFixture(t)
		f.intake.DepartureFunc = nil // the fake's own ID de-duplication
		if w := f.serve(signed(t, secret, "evt_1", t0, body)); w.Code != http.StatusAccepted {
			t.Fatalf("first: %d %s", w.Code, w.Body)
		}
		if w := f.serve(signed(t, secret, "evt_1", t0, body)); w.Code != http.StatusConflict {
			t.Fatalf("replay: %d %s", w.Code, w.Body)
		}
		if n := len(f.intake.Departures()); n != 1 {
			t.Fatalf("intake called %d times after a replay", n)
		}
		f.now = t0.Add(30 * time.Second)
		w := f.serve(signed(t, secret, "evt_1", f.now, body))
		var res response
		if err := json.Unmarshal(w.Body.Bytes(), &res); w.Code != http.StatusAccepted || err != nil || !res.Duplicate {
			t.Fatalf("retry: %d %s", w.Code, w.Body)
		}
	})
	t.Run("intake error answers 503", func(t *testing.T) {
		f := newFixture(t)
		f.intake.DepartureFunc = func(context.Context, rotator.DepartureReport) (rotator.DepartureResult, error) {
			return rotator.DepartureResult{}, errors.New("database is locked")
		}
		if w := f.serve(signed(t, secret, "evt_1", t0, body)); w.Code != http.StatusServiceUnavailable {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
	})
	t.Run("guard error answers 503 without calling the engine", func(t *testing.T) {
		f := newFixture(t)
		f.guard.Err = errors.New("store down")
		if w := f.serve(signed(t, secret, "evt_1", t0, body)); w.Code != http.StatusServiceUnavailable || len(f.intake.Departures()) != 0 {
			t.Fatalf("status %d, %d intake calls", w.Code, len(f.intake.Departures()))
		}
	})
}

func TestConfig(t *testing.T) {
	if err := DefaultConfig().Validate(); err == nil || !strings.HasPrefix(err.Error(), "secret_env: required") {
		t.Fatalf("default config without a secret: %v", err)
	}
	if _, err := New(Config{SecretEnv: "REKEY_TEST_UNSET_VARIABLE", Tolerance: time.Minute}, "hr", &webhooktest.Intake{}, &webhooktest.Guard{}, nil); err == nil {
		t.Fatal("unset secret accepted")
	}
}

// FuzzParseReport: any authenticated body parses or is refused; never a
// panic, and a parsed report names someone.
func FuzzParseReport(f *testing.F) {
	for _, s := range []string{
		`{"email":"ana@example.com","user_id":"U024BE7LH","actor":"workday"}`,
		`{"user_id":"U1"}`, `{"email":"a@b"}`, `{"email":"ana"}`, `{}`, `[]`, `{"email":1}`, `{"user_id":"\u0000"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rep, err := parseReport(body)
		if err != nil {
			return
		}
		if rep.Email == "" && rep.UserID == "" {
			t.Fatalf("report names nobody: %+v", rep)
		}
	})
}
