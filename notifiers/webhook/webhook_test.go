package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

const testSecret = "s3cr3t-signing-key"

// receiver is an httptest server answering with a scripted list of
// responses (the last one repeats) and recording every request.
type receiver struct {
	t       *testing.T
	srv     *httptest.Server
	mu      sync.Mutex
	script  []response
	reqs    []recorded
	onEnter func(r *http.Request) // optional, runs before the answer
}

type response struct {
	status     int
	retryAfter string
}

type recorded struct {
	header http.Header
	body   []byte
	path   string
}

func newReceiver(t *testing.T, script ...response) *receiver {
	t.Helper()
	rc := &receiver{t: t, script: script}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, recorded{header: r.Header.Clone(), body: body, path: r.URL.RequestURI()})
	resp := response{status: http.StatusOK}
	if len(rc.script) > 0 {
		resp = rc.script[0]
		if len(rc.script) > 1 {
			rc.script = rc.script[1:]
		}
	}
	hook := rc.onEnter
	rc.mu.Unlock()
	if hook != nil {
		hook(r)
	}
	if resp.retryAfter != "" {
		w.Header().Set("Retry-After", resp.retryAfter)
	}
	w.WriteHeader(resp.status)
}

func (rc *receiver) requests() []recorded {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]recorded(nil), rc.reqs...)
}

func secretFile(t *testing.T, value string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "webhook-secret")
	if err := os.WriteFile(p, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// newNotifier builds a notifier whose sleeps are recorded, not slept, and
// whose backoff is n ms after the n-th failure.
func newNotifier(t *testing.T, cfg Config, logs io.Writer) (*Notifier, *[]time.Duration) {
	t.Helper()
	if logs == nil {
		logs = io.Discard
	}
	n, err := New(cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	sleeps := &[]time.Duration{}
	n.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		*sleeps = append(*sleeps, d)
		return ctx.Err()
	}
	n.backoff = func(failures int) time.Duration { return time.Duration(failures) * time.Millisecond }
	return n, sleeps
}

func config(t *testing.T, url string) Config {
	cfg := DefaultConfig()
	cfg.URL = url
	cfg.SecretFile = secretFile(t, testSecret)
	return cfg
}

func testEvent() rotator.Event {
	return rotator.Event{
		ID:         "ev_0123",
		Kind:       rotator.EventFinished,
		Severity:   rotator.SeverityInfo,
		Key:        "kubeadapt",
		RotationID: "rot_42",
		Phase:      rotator.PhaseDone,
		Trigger:    rotator.TriggerAge,
		Mode:       rotator.ModeStaged,
		Actor:      "policy:maxage",
		Owners:     []string{"ana@example.com"},
		Message:    "kubeadapt rotated to generation 2",
		Fields:     map[string]string{"fingerprint": "0a1b2c3d4e5f", "generation": "2"},
		At:         time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC),
	}
}

func TestNotifySignedPayload(t *testing.T) {
	tests := map[string]struct {
		secret string
	}{
		"raw secret":               {secret: testSecret},
		"standard webhooks secret": {secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rc := newReceiver(t)
			cfg := config(t, rc.srv.URL+"/hooks/rekey")
			cfg.SecretFile = secretFile(t, tc.secret)
			cfg.Headers = map[string]string{"X-Team": "platform"}
			n, _ := newNotifier(t, cfg, nil)
			if err := n.Notify(context.Background(), testEvent()); err != nil {
				t.Fatal(err)
			}
			reqs := rc.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			h := r.header
			if err := Verify(tc.secret, h.Get("webhook-id"), h.Get("webhook-timestamp"), r.body,
				h.Get("webhook-signature"), time.Now(), time.Minute); err != nil {
				t.Fatalf("receiver rejects the signature: %v", err)
			}
			if h.Get("webhook-id") != "ev_0123" || h.Get("Content-Type") != "application/json" || h.Get("X-Team") != "platform" {
				t.Fatalf("headers %v", h)
			}
			var got map[string]any
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatal(err)
			}
			want := map[string]any{
				"version": float64(1), "id": "ev_0123", "kind": "rotation.finished", "severity": "info",
				"key": "kubeadapt", "rotation_id": "rot_42", "phase": "done", "trigger": "age",
				"mode": "staged", "actor": "policy:maxage", "message": "kubeadapt rotated to generation 2",
				"at": "2025-03-01T10:00:00Z",
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s = %#v, want %#v", k, got[k], v)
				}
			}
			if len(got) != 14 {
				t.Errorf("payload has %d members, want 14: %s", len(got), r.body)
			}
			if f, _ := got["fields"].(map[string]any); f["generation"] != "2" {
				t.Errorf("fields = %v", got["fields"])
			}
			if o, _ := got["owners"].([]any); len(o) != 1 || o[0] != "ana@example.com" {
				t.Errorf("owners = %v", got["owners"])
			}
		})
	}
}

func TestPayloadEmptyCollections(t *testing.T) {
	b, err := json.Marshal(NewPayload(rotator.Event{ID: "x", Kind: rotator.EventOrphan}))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"owners":[]`)) || !bytes.Contains(b, []byte(`"fields":{}`)) {
		t.Fatalf("payload %s: want owners [] and fields {}", b)
	}
}

func TestNotifyRetries(t *testing.T) {
	tests := map[string]struct {
		script        []response
		maxAttempts   int
		wantCalls     int
		wantSleeps    []time.Duration
		wantErr       string
		wantPermanent bool
		wantReason    rotator.Reason
	}{
		"503 twice then success": {
			script:     []response{{status: 503}, {status: 503}, {status: 204}},
			wantCalls:  3,
			wantSleeps: []time.Duration{time.Millisecond, 2 * time.Millisecond},
		},
		"gives up after max_attempts": {
			script:      []response{{status: 502}},
			maxAttempts: 3,
			wantCalls:   3,
			wantSleeps:  []time.Duration{time.Millisecond, 2 * time.Millisecond},
			wantErr:     "HTTP 502 Bad Gateway (gave up after 3 attempts)",
			wantReason:  rotator.ReasonTransient,
		},
		"single attempt": {
			script:      []response{{status: 500}},
			maxAttempts: 1,
			wantCalls:   1,
			wantErr:     "gave up after 1 attempts",
			wantReason:  rotator.ReasonTransient,
		},
		"400 is permanent": {
			script:        []response{{status: 400}, {status: 200}},
			wantCalls:     1,
			wantErr:       "HTTP 400",
			wantPermanent: true,
			wantReason:    rotator.ReasonInvalid,
		},
		"401 is a permanent auth failure": {
			script:        []response{{status: 401}},
			wantCalls:     1,
			wantErr:       "HTTP 401",
			wantPermanent: true,
			wantReason:    rotator.ReasonAuth,
		},
		"410 is permanent": {
			script:        []response{{status: 410}},
			wantCalls:     1,
			wantPermanent: true,
			wantReason:    rotator.ReasonInvalid,
		},
		"redirects are not followed": {
			script:        []response{{status: 302}},
			wantCalls:     1,
			wantErr:       "redirects are not followed",
			wantPermanent: true,
			wantReason:    rotator.ReasonInvalid,
		},
		"429 Retry-After honoured": {
			script:     []response{{status: 429, retryAfter: "1"}, {status: 200}},
			wantCalls:  2,
			wantSleeps: []time.Duration{time.Second},
		},
		"503 Retry-After honoured": {
			script:     []response{{status: 503, retryAfter: "2"}, {status: 200}},
			wantCalls:  2,
			wantSleeps: []time.Duration{2 * time.Second},
		},
		"429 without Retry-After backs off": {
			script:     []response{{status: 429}, {status: 200}},
			wantCalls:  2,
			wantSleeps: []time.Duration{time.Millisecond},
		},
		"429 Retry-After too long is left to the dispatcher": {
			script:     []response{{status: 429, retryAfter: "3600"}},
			wantCalls:  1,
			wantErr:    "exceeds",
			wantReason: rotator.ReasonRateLimited,
		},
		"429 until the end": {
			script:      []response{{status: 429, retryAfter: "1"}},
			maxAttempts: 2,
			wantCalls:   2,
			wantSleeps:  []time.Duration{time.Second},
			wantErr:     "HTTP 429",
			wantReason:  rotator.ReasonRateLimited,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rc := newReceiver(t, tc.script...)
			cfg := config(t, rc.srv.URL)
			if tc.maxAttempts > 0 {
				cfg.MaxAttempts = tc.maxAttempts
			}
			n, sleeps := newNotifier(t, cfg, nil)
			err := n.Notify(context.Background(), testEvent())
			if got := len(rc.requests()); got != tc.wantCalls {
				t.Errorf("%d requests, want %d", got, tc.wantCalls)
			}
			if !equalDurations(*sleeps, tc.wantSleeps) {
				t.Errorf("sleeps %v, want %v", *sleeps, tc.wantSleeps)
			}
			if tc.wantErr == "" && tc.wantReason == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if rotator.IsPermanent(err) != tc.wantPermanent {
				t.Errorf("IsPermanent = %v, want %v", rotator.IsPermanent(err), tc.wantPermanent)
			}
			if got := rotator.ReasonOf(err); got != tc.wantReason {
				t.Errorf("reason %s, want %s", got, tc.wantReason)
			}
			// Each retry re-signs with the same id.
			for _, r := range rc.requests() {
				if r.header.Get("webhook-id") != "ev_0123" {
					t.Errorf("webhook-id %q on a retry", r.header.Get("webhook-id"))
				}
			}
		})
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestNotifyNetworkErrorIsTransient(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens any more
	cfg := config(t, url+"/path?token=abc")
	cfg.MaxAttempts = 2
	n, sleeps := newNotifier(t, cfg, nil)
	err := n.Notify(context.Background(), testEvent())
	if err == nil || rotator.IsPermanent(err) || rotator.ReasonOf(err) != rotator.ReasonTransient {
		t.Fatalf("err = %v, want a transient error", err)
	}
	if len(*sleeps) != 1 {
		t.Fatalf("sleeps %v, want one between two attempts", *sleeps)
	}
	if strings.Contains(err.Error(), "token=abc") || strings.Contains(err.Error(), "/path") {
		t.Fatalf("error shows the URL's path or query: %v", err)
	}
}

func TestNotifyAttemptTimeout(t *testing.T) {
	rc := newReceiver(t)
	rc.onEnter = func(r *http.Request) { <-r.Context().Done() } // hang until the client gives up
	cfg := config(t, rc.srv.URL)
	cfg.Timeout = 50 * time.Millisecond
	cfg.MaxAttempts = 2
	n, _ := newNotifier(t, cfg, nil)
	err := n.Notify(context.Background(), testEvent())
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || rotator.IsPermanent(err) {
		t.Fatalf("err = %v, want a retryable deadline error", err)
	}
	if got := len(rc.requests()); got != 2 {
		t.Fatalf("%d requests, want 2", got)
	}
}
