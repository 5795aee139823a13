package github

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/webhooks/internal/webhooktest"
)

const delivery = "72d3162e-cc78-11e3-81ab-4c9367dc0958"

func TestAlert(t *testing.T) {
	created := alertPayload("created", "acme", "billing", 7)
	fp := rotator.Fingerprint(alertSecret)
	tests := map[string]struct {
		req        func() *http.Request
		wantStatus int
		wantBody   string
		intake     int
		api        int
	}{
		"created": {
			req:        func() *http.Request { return alertRequest(hubSecret, "secret_scanning_alert", delivery, created) },
			wantStatus: http.StatusAccepted, wantBody: `{"accepted":true,"known":true,"duplicate":false}`, intake: 1, api: 1,
		},
		"reopened": {
			req: func() *http.Request {
				return alertRequest(hubSecret, "secret_scanning_alert", delivery, alertPayload("reopened", "acme", "billing", 7))
			},
			wantStatus: http.StatusAccepted, intake: 1, api: 1,
		},
		"form-encoded delivery": {
			req: func() *http.Request {
				body := url.Values{"payload": {created}}.Encode()
				r := alertRequest(hubSecret, "secret_scanning_alert", delivery, body)
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				return r
			},
			wantStatus: http.StatusAccepted, intake: 1, api: 1,
		},
		"ping": {
			req: func() *http.Request {
				return alertRequest(hubSecret, "ping", delivery, `{"zen":"Keep it logically awesome.","hook_id":1}`)
			},
			wantStatus: http.StatusOK,
		},
		"another event is ignored": {
			req:        func() *http.Request { return alertRequest(hubSecret, "push", delivery, `{"ref":"refs/heads/main"}`) },
			wantStatus: http.StatusNoContent,
		},
		"resolved is ignored": {
			req: func() *http.Request {
				return alertRequest(hubSecret, "secret_scanning_alert", delivery, alertPayload("resolved", "acme", "billing", 7))
			},
			wantStatus: http.StatusNoContent,
		},
		"wrong secret": {
			req: func() *http.Request {
				return alertRequest("another-secret-of-32-characters!!", "secret_scanning_alert", delivery, created)
			},
			wantStatus: http.StatusUnauthorized,
		},
		"wrong secret on a ping": {
			req:        func() *http.Request { return alertRequest("another-secret-of-32-characters!!", "ping", delivery, `{}`) },
			wantStatus: http.StatusUnauthorized,
		},
		"tampered body": {
			req: func() *http.Request {
				r := alertRequest(hubSecret, "secret_scanning_alert", delivery, created)
				other := strings.Replace(created, `"number":7`, `"number":8`, 1)
				r2 := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(other))
				r2.Header = r.Header
				return r2
			},
			wantStatus: http.StatusUnauthorized,
		},
		"missing signature": {
			req: func() *http.Request {
				r := alertRequest(hubSecret, "secret_scanning_alert", delivery, created)
				r.Header.Del(headerHubSignature)
				return r
			},
			wantStatus: http.StatusUnauthorized,
		},
		"sha1 signature only": {
			req: func() *http.Request {
				r := alertRequest(hubSecret, "secret_scanning_alert", delivery, created)
				r.Header.Del(headerHubSignature)
				r.Header.Set("X-Hub-Signature", "sha1=0000000000000000000000000000000000000000")
				return r
			},
			wantStatus: http.StatusUnauthorized,
		},
		"missing delivery id": {
			req:        func() *http.Request { return alertRequest(hubSecret, "secret_scanning_alert", "", created) },
			wantStatus: http.StatusBadRequest,
		},
		"oversize body": {
			req: func() *http.Request {
				return alertRequest(hubSecret, "secret_scanning_alert", delivery, `{"x":"`+strings.Repeat("a", 1<<20)+`"}`)
			},
			wantStatus: http.StatusRequestEntityTooLarge,
		},
		"malformed JSON": {
			req:        func() *http.Request { return alertRequest(hubSecret, "secret_scanning_alert", delivery, `{"action":`) },
			wantStatus: http.StatusBadRequest,
		},
		"path traversal in the repository name": {
			req: func() *http.Request {
				return alertRequest(hubSecret, "secret_scanning_alert", delivery, alertPayload("created", "acme", "../../user", 7))
			},
			wantStatus: http.StatusBadRequest,
		},
		"no alert number": {
			req: func() *http.Request {
				return alertRequest(hubSecret, "secret_scanning_alert", delivery, alertPayload("created", "acme", "billing", 0))
			},
			wantStatus: http.StatusBadRequest,
		},
		"wrong content type": {
			req: func() *http.Request {
				r := alertRequest(hubSecret, "secret_scanning_alert", delivery, created)
				r.Header.Set("Content-Type", "text/plain")
				return r
			},
			wantStatus: http.StatusUnsupportedMediaType,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, nil)
			f.api.addAlert("acme", "billing", 7, alertSecret)
			w := f.serve(tc.req())
			if w.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.wantStatus, w.Body)
			}
			got := f.intake.Exposures()
			if len(got) != tc.intake || f.api.count() != tc.api {
				t.Fatalf("%d intake calls (want %d), %d API calls (want %d)", len(got), tc.intake, f.api.count(), tc.api)
			}
			recs := f.guard.Records(DeliveryNamespace)
			if tc.intake == 1 {
				want := rotator.ExposureReport{ID: "github-alert:" + alertKey("acme", "billing", 7, got[0].ID[strings.LastIndex(got[0].ID, ":")+1:]), Via: ViaAlert, Source: Source,
					URL: "https://github.com/acme/billing/security/secret-scanning/7", Fingerprint: fp, Type: "kubeadapt_api_key", ReceivedAt: t0}
				if got[0] != want {
					t.Fatalf("report\n got %+v\nwant %+v", got[0], want)
				}
				if until, ok := recs[got[0].ID[len("github-alert:"):]]; !ok || !until.Equal(t0.Add(deliveryMemory)) {
					t.Fatalf("replay guard records %v", recs)
				}
			} else if f.guard.Len() != 0 {
				t.Fatalf("replay guard records %v", recs)
			}
			if tc.wantBody != "" && strings.TrimSpace(w.Body.String()) != tc.wantBody {
				t.Fatalf("body %s, want %s", w.Body, tc.wantBody)
			}
			f.noLeak(t, w.Body.String())
		})
	}
}

func TestAlertFailuresAreRedeliverable(t *testing.T) {
	body := alertPayload("created", "acme", "billing", 7)
	deliver := func(f *fixture) *httptest.ResponseRecorder {
		return f.serve(alertRequest(hubSecret, "secret_scanning_alert", delivery, body))
	}
	t.Run("GitHub API error", func(t *testing.T) {
		f := newFixture(t, nil)
		f.api.addAlert("acme", "billing", 7, alertSecret)
		f.api.setStatus(http.StatusForbidden)
		if w := deliver(f); w.Code != http.StatusServiceUnavailable || len(f.intake.Exposures()) != 0 || f.guard.Len() != 0 {
			t.Fatalf("status %d, %d intake calls, %d guard records", w.Code, len(f.intake.Exposures()), f.guard.Len())
		}
		if !strings.Contains(f.logs.String(), "HTTP 403") {
			t.Fatalf("logs do not say why: %s", f.logs)
		}
		// The operator fixes the token's permissions and redelivers.
		f.api.setStatus(http.StatusOK)
		if w := deliver(f); w.Code != http.StatusAccepted || len(f.intake.Exposures()) != 1 {
			t.Fatalf("redelivery: %d %s", w.Code, w.Body)
		}
		f.noLeak(t, "")
	})
	t.Run("alert without its secret", func(t *testing.T) {
		f := newFixture(t, nil)
		f.api.addAlert("acme", "billing", 7, "")
		if w := deliver(f); w.Code != http.StatusServiceUnavailable || len(f.intake.Exposures()) != 0 {
			t.Fatalf("status %d", w.Code)
		}
	})
	t.Run("intake error", func(t *testing.T) {
		f := newFixture(t, nil)
		f.api.addAlert("acme", "billing", 7, alertSecret)
		fail := true
		f.intake.ExposureFunc = func(context.Context, rotator.ExposureReport) (rotator.ExposureResult, error) {
			if fail {
				return rotator.ExposureResult{}, errors.New("database is locked")
			}
			return rotator.ExposureResult{Known: true}, nil
		}
		if w := deliver(f); w.Code != http.StatusServiceUnavailable || f.guard.Len() != 0 {
			t.Fatalf("status %d, %d guard records", w.Code, f.guard.Len())
		}
		fail = false
		if w := deliver(f); w.Code != http.StatusAccepted {
			t.Fatalf("redelivery: %d %s", w.Code, w.Body)
		}
		f.noLeak(t, "")
	})
	t.Run("redelivery of a processed delivery", func(t *testing.T) {
		f := newFixture(t, nil)
		f.api.addAlert("acme", "billing", 7, alertSecret)
		deliver(f)
		w := deliver(f)
		var a alertAnswer
		if err := json.Unmarshal(w.Body.Bytes(), &a); w.Code != http.StatusAccepted || err != nil || !a.Duplicate {
			t.Fatalf("redelivery: %d %s", w.Code, w.Body)
		}
		got := f.intake.Exposures()
		if len(got) != 2 || got[0].ID != got[1].ID {
			t.Fatalf("redelivery reached the engine as %+v", got)
		}
	})
	t.Run("guard error after the engine recorded the report", func(t *testing.T) {
		f := newFixture(t, nil)
		f.api.addAlert("acme", "billing", 7, alertSecret)
		f.guard.Err = errors.New("store down")
		if w := deliver(f); w.Code != http.StatusAccepted {
			t.Fatalf("status %d: the report is recorded, the answer must say so", w.Code)
		}
	})
	t.Run("alert disabled", func(t *testing.T) {
		f := newFixture(t, func(c *Config) { c.Alert = false })
		if w := deliver(f); w.Code != http.StatusNotFound {
			t.Fatalf("status %d", w.Code)
		}
	})
}

func TestAlertRoute(t *testing.T) {
	f := newFixture(t, nil)
	f.api.addAlert("acme", "billing", 7, alertSecret)
	f.h.now = time.Now
	mux := http.NewServeMux()
	mux.Handle(Route, f.h)
	mux.Handle(AlertRoute, f.h.Alert())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	body := alertPayload("created", "acme", "billing", 7)
	for i, path := range []string{"/v1/events/exposure/github", "/v1/events/github/alert"} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
		req.Header = alertRequest(hubSecret, "secret_scanning_alert", delivery+itoa(i), body).Header
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("%s: status %d", path, resp.StatusCode)
		}
	}
	// The dedicated alert route does not take partner reports.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/events/github/alert", strings.NewReader(`[]`))
	req.Header = partnerRequest(t, f.gh, `[]`).Header
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("partner POST on the alert route: %d", resp.StatusCode)
	}
}

func TestConfig(t *testing.T) {
	tests := map[string]struct {
		edit    func(*Config)
		wantErr string
	}{
		"defaults":               {edit: func(*Config) {}},
		"alert with everything":  {edit: func(c *Config) { c.Alert, c.SecretEnv, c.TokenEnv = true, "S", "T" }},
		"nothing enabled":        {edit: func(c *Config) { c.Partner = false }, wantErr: "partner: enable partner, alert or both"},
		"alert without secret":   {edit: func(c *Config) { c.Alert, c.TokenEnv = true, "T" }, wantErr: "secret_env: required"},
		"alert without token":    {edit: func(c *Config) { c.Alert, c.SecretEnv = true, "S" }, wantErr: "token_env: required"},
		"plain http key list":    {edit: func(c *Config) { c.KeysURL = "http://example.com/keys" }, wantErr: "keys_url: must use https"},
		"loopback http key list": {edit: func(c *Config) { c.KeysURL = "http://127.0.0.1:8080/keys" }},
		"credentials in URL":     {edit: func(c *Config) { c.KeysURL = "https://u:p@example.com/keys" }, wantErr: "keys_url: must be an absolute https URL"},
		"GHES API": {edit: func(c *Config) {
			c.Alert, c.SecretEnv, c.TokenEnv, c.APIBaseURL = true, "S", "T", "https://ghe.example.com/api/v3"
		}},
		"plain http API": {edit: func(c *Config) {
			c.Alert, c.SecretEnv, c.TokenEnv, c.APIBaseURL = true, "S", "T", "http://ghe.example.com/api/v3"
		}, wantErr: "api_base_url: must use https"},
		"unknown action":     {edit: func(c *Config) { c.Alert, c.SecretEnv, c.TokenEnv, c.Actions = true, "S", "T", []string{"resolved"} }, wantErr: `actions[0]: "resolved" is not one of`},
		"no action":          {edit: func(c *Config) { c.Alert, c.SecretEnv, c.TokenEnv, c.Actions = true, "S", "T", nil }, wantErr: "actions: list at least one"},
		"refresh too often":  {edit: func(c *Config) { c.KeysRefreshInterval = 0 }, wantErr: "keys_refresh_interval: must be at least 1s"},
		"max age too short":  {edit: func(c *Config) { c.KeysMaxAge = time.Second }, wantErr: "keys_max_age: must be at least"},
		"both token sources": {edit: func(c *Config) { c.TokenEnv, c.TokenFile = "T", "/f" }, wantErr: "token_env: set only one"},
		"zero timeout":       {edit: func(c *Config) { c.Timeout = 0 }, wantErr: "timeout: must be positive"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c)
			err := c.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
	t.Run("weak webhook secret", func(t *testing.T) {
		t.Setenv("REKEY_TEST_WEAK", "short")
		t.Setenv("REKEY_TEST_GH_TOKEN", ghToken)
		c := DefaultConfig()
		c.Alert, c.SecretEnv, c.TokenEnv = true, "REKEY_TEST_WEAK", "REKEY_TEST_GH_TOKEN"
		if _, err := New(c, nil, nil, nil); err == nil {
			t.Fatal("no error")
		}
		_, err := New(c, &webhooktest.Intake{}, &webhooktest.Guard{}, nil)
		if err == nil || !strings.Contains(err.Error(), "at least 16") || strings.Contains(err.Error(), "short") {
			t.Fatalf("err = %v", err)
		}
	})
}
