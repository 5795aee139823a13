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

// newNotifier builds a notifier logging to logs (nil discards).
func newNotifier(t *testing.T, cfg Config, logs io.Writer) *Notifier {
	t.Helper()
	if logs == nil {
		logs = io.Discard
	}
	n, err := New(cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return n
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
			n := newNotifier(t, cfg, nil)
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

// TestNotifyClassifies: one Notify call is one POST, whatever the answer;
// the error tells the dispatcher whether and when to try again.
func TestNotifyClassifies(t *testing.T) {
	tests := map[string]struct {
		answer        response
		wantErr       string
		wantPermanent bool
		wantReason    rotator.Reason
		wantAfter     time.Duration
	}{
		"204 delivered":              {answer: response{status: 204}},
		"503 is retryable":           {answer: response{status: 503}, wantErr: "HTTP 503 Service Unavailable", wantReason: rotator.ReasonTransient},
		"502 is retryable":           {answer: response{status: 502}, wantErr: "HTTP 502 Bad Gateway", wantReason: rotator.ReasonTransient},
		"408 is retryable":           {answer: response{status: 408}, wantErr: "HTTP 408 Request Timeout", wantReason: rotator.ReasonTransient},
		"400 is permanent":           {answer: response{status: 400}, wantErr: "HTTP 400", wantPermanent: true, wantReason: rotator.ReasonInvalid},
		"401 is permanent auth":      {answer: response{status: 401}, wantErr: "HTTP 401", wantPermanent: true, wantReason: rotator.ReasonAuth},
		"410 is permanent":           {answer: response{status: 410}, wantPermanent: true, wantReason: rotator.ReasonInvalid},
		"redirects are not followed": {answer: response{status: 302}, wantErr: "redirects are not followed", wantPermanent: true, wantReason: rotator.ReasonInvalid},
		"429 carries Retry-After": {answer: response{status: 429, retryAfter: "7"}, wantErr: "HTTP 429 Too Many Requests (retry after 7s)",
			wantReason: rotator.ReasonRateLimited, wantAfter: 7 * time.Second},
		"503 carries Retry-After": {answer: response{status: 503, retryAfter: "2"}, wantReason: rotator.ReasonTransient, wantAfter: 2 * time.Second},
		"429 long Retry-After":    {answer: response{status: 429, retryAfter: "3600"}, wantReason: rotator.ReasonRateLimited, wantAfter: time.Hour},
		"429 without Retry-After": {answer: response{status: 429}, wantReason: rotator.ReasonRateLimited},
		"500 Retry-After ignored": {answer: response{status: 500, retryAfter: "9"}, wantReason: rotator.ReasonTransient},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rc := newReceiver(t, tc.answer, response{status: 200})
			n := newNotifier(t, config(t, rc.srv.URL), nil)
			err := n.Notify(context.Background(), testEvent())
			if got := len(rc.requests()); got != 1 {
				t.Errorf("%d requests, want 1: retries belong to the dispatcher", got)
			}
			if tc.wantReason == "" {
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
			var ra interface{ RetryAfter() time.Duration }
			var after time.Duration
			if errors.As(err, &ra) {
				after = ra.RetryAfter()
			}
			if after != tc.wantAfter {
				t.Errorf("RetryAfter = %v, want %v", after, tc.wantAfter)
			}
		})
	}
}

// TestRetryReusesTheEventID: the dispatcher's next attempt of the same
// event is signed afresh with the same webhook-id, so receivers de-duplicate.
func TestRetryReusesTheEventID(t *testing.T) {
	rc := newReceiver(t, response{status: 503}, response{status: 200})
	n := newNotifier(t, config(t, rc.srv.URL), nil)
	if err := n.Notify(context.Background(), testEvent()); err == nil {
		t.Fatal("first attempt: want the 503")
	}
	if err := n.Notify(context.Background(), testEvent()); err != nil {
		t.Fatal(err)
	}
	reqs := rc.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	for _, r := range reqs {
		h := r.header
		if h.Get("webhook-id") != "ev_0123" {
			t.Errorf("webhook-id %q", h.Get("webhook-id"))
		}
		if err := Verify(testSecret, h.Get("webhook-id"), h.Get("webhook-timestamp"), r.body, h.Get("webhook-signature"), time.Now(), time.Minute); err != nil {
			t.Errorf("attempt not signed: %v", err)
		}
	}
}

func TestNotifyNetworkErrorIsTransient(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens any more
	n := newNotifier(t, config(t, url+"/path?token=abc"), nil)
	err := n.Notify(context.Background(), testEvent())
	if err == nil || rotator.IsPermanent(err) || rotator.ReasonOf(err) != rotator.ReasonTransient {
		t.Fatalf("err = %v, want a transient error", err)
	}
	if strings.Contains(err.Error(), "token=abc") || strings.Contains(err.Error(), "/path") {
		t.Fatalf("error shows the URL's path or query: %v", err)
	}
}

func TestNotifyAttemptTimeout(t *testing.T) {
	rc := newReceiver(t)
	rc.onEnter = func(r *http.Request) { <-r.Context().Done() } // hang until the client gives up
	cfg := config(t, rc.srv.URL)
	// Long enough for a loaded machine to dial and send the request before
	// the attempt gives up, so that the receiver sees it.
	cfg.Timeout = 500 * time.Millisecond
	n := newNotifier(t, cfg, nil)
	err := n.Notify(context.Background(), testEvent())
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || rotator.IsPermanent(err) {
		t.Fatalf("err = %v, want a retryable deadline error", err)
	}
	// The receiver records the request when its handler starts, which can
	// trail the client's give-up on a loaded machine: wait for it, then
	// check that the notifier did not try again on its own.
	for deadline := time.Now().Add(5 * time.Second); len(rc.requests()) == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if got := len(rc.requests()); got != 1 {
		t.Fatalf("%d requests, want 1", got)
	}
}
