package slack

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/internal/slackapproval"
	"github.com/rekeyhq/rekey/rotator"
)

func TestApproveFromSlack(t *testing.T) {
	tests := map[string]struct {
		gate     rotator.Gate
		user     string
		action   string
		approver string
		verdict  rotator.Verdict
	}{
		"approve start gate, listed user": {gate: rotator.GateStart, user: "UANA", action: slackapproval.ActionApprove, approver: "ana@example.com",
			verdict: rotator.VerdictApprove},
		"deny revoke gate, group member": {gate: rotator.GateRevoke, user: "UBOB", action: slackapproval.ActionDeny, approver: "bob@example.com",
			verdict: rotator.VerdictDeny},
		"approve drain gate": {gate: rotator.GateDrain, user: "UEVE", action: slackapproval.ActionApprove, approver: "eve@example.com",
			verdict: rotator.VerdictApprove},
		"user without email, mapped in identities": {gate: rotator.GateStart, user: "UNOMAIL", action: slackapproval.ActionApprove, approver: "nomail@example.com",
			verdict: rotator.VerdictApprove},
		"profile email in another case, canonicalised": {gate: rotator.GateStart, user: "UCASE", action: slackapproval.ActionApprove, approver: "ana@example.com",
			verdict: rotator.VerdictApprove},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) {
				c.Approvers.UserIDs = append(c.Approvers.UserIDs, "UNOMAIL", "UCASE")
				c.Identities = map[string]string{"UNOMAIL": " NoMail@Example.com"}
			})
			ch, ts, value := e.heldForApproval("rot_appr0001", tc.gate)
			if code := e.click(blockActions(e.slack.apiURL(), tc.user, tc.action, value, ch, ts)); code != http.StatusOK {
				t.Fatalf("status %d, want 200", code)
			}
			reqs := e.decider.requests()
			want := rotator.ApproveRequest{RotationID: "rot_appr0001", Gate: tc.gate, Approver: tc.approver, Verdict: tc.verdict, Via: "slack", Comment: "slack user " + tc.user}
			if len(reqs) != 1 || !reflect.DeepEqual(reqs[0], want) {
				t.Fatalf("Decide calls = %+v, want [%+v]", reqs, want)
			}
			got := e.messages.shown()
			if len(got) != 1 {
				t.Fatalf("%d decisions shown, want 1", len(got))
			}
			s := got[0]
			if s.rotation != "rot_appr0001" || s.at != (slackapproval.Message{Channel: ch, TS: ts}) {
				t.Errorf("decision shown for %s at %+v, want rot_appr0001 at the clicked message %s/%s", s.rotation, s.at, ch, ts)
			}
			d := s.decision
			if d.Gate != tc.gate || d.Verdict != tc.verdict || d.By != tc.approver || d.SlackID != tc.user || d.At.IsZero() {
				t.Errorf("decision %+v", d)
			}
			if eph := e.slack.ephemerals(); len(eph) != 0 {
				t.Errorf("ephemeral replies on success: %q", eph)
			}
			e.assertNoLeak()
		})
	}
}

// TestClickerWithoutIdentity: a Slack user with no profile email and no
// configured identity cannot decide (a "slack:<id>" identity would let a
// person who also uses the API count twice).
func TestClickerWithoutIdentity(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Approvers.UserIDs = append(c.Approvers.UserIDs, "UNOMAIL") })
	ch, ts, value := e.heldForApproval("rot_noid0001", rotator.GateStart)
	if code := e.click(blockActions(e.slack.apiURL(), "UNOMAIL", slackapproval.ActionApprove, value, ch, ts)); code != http.StatusOK {
		t.Fatalf("status %d, want 200", code)
	}
	if reqs := e.decider.requests(); len(reqs) != 0 {
		t.Fatalf("Decide calls = %+v, want none", reqs)
	}
	if eph := e.slack.ephemerals(); len(eph) != 1 || !strings.Contains(eph[0], "cannot tell who you are") {
		t.Errorf("ephemeral replies = %q", eph)
	}
}

// TestInteractionRejected: requests that fail authentication never reach
// the decider.
func TestInteractionRejected(t *testing.T) {
	tests := map[string]struct {
		req      func(e *env, payload any) *http.Request
		wantCode int
	}{
		"bad signature": {req: func(e *env, p any) *http.Request {
			return signedRequest(e.t, "not-the-signing-secret", time.Now(), p)
		}, wantCode: http.StatusUnauthorized},
		"stale timestamp": {req: func(e *env, p any) *http.Request {
			return signedRequest(e.t, testSigningSecret, time.Now().Add(-6*time.Minute), p)
		}, wantCode: http.StatusUnauthorized},
		"timestamp from the future": {req: func(e *env, p any) *http.Request {
			return signedRequest(e.t, testSigningSecret, time.Now().Add(6*time.Minute), p)
		}, wantCode: http.StatusUnauthorized},
		"no signature": {req: func(e *env, p any) *http.Request {
			r := signedRequest(e.t, testSigningSecret, time.Now(), p)
			r.Header.Del("X-Slack-Signature")
			return r
		}, wantCode: http.StatusUnauthorized},
		"body altered after signing": {req: func(e *env, p any) *http.Request {
			good := signedRequest(e.t, testSigningSecret, time.Now(), p)
			r := signedRequest(e.t, testSigningSecret, time.Now(), blockActions(e.slack.apiURL(), "UANA", slackapproval.ActionApprove, "rot_other001:start", "CREKEY", "1"))
			r.Header = good.Header
			return r
		}, wantCode: http.StatusUnauthorized},
		"too large": {req: func(e *env, _ any) *http.Request {
			body := "payload=" + strings.Repeat("a", MaxBodyBytes)
			stamp := fmt.Sprint(time.Now().Unix())
			r := httptest.NewRequest(http.MethodPost, "/v1/slack/interactions", strings.NewReader(body))
			r.Header.Set("X-Slack-Request-Timestamp", stamp)
			r.Header.Set("X-Slack-Signature", sign(testSigningSecret, stamp, []byte(body)))
			return r
		}, wantCode: http.StatusRequestEntityTooLarge},
		"GET": {req: func(e *env, _ any) *http.Request {
			return httptest.NewRequest(http.MethodGet, "/v1/slack/interactions", nil)
		}, wantCode: http.StatusMethodNotAllowed},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, nil)
			ch, ts, value := e.heldForApproval("rot_rej00001", rotator.GateStart)
			rec := httptest.NewRecorder()
			e.h.ServeHTTP(rec, tc.req(e, blockActions(e.slack.apiURL(), "UANA", slackapproval.ActionApprove, value, ch, ts)))
			e.h.wg.Wait()
			if rec.Code != tc.wantCode {
				t.Fatalf("status %d, want %d", rec.Code, tc.wantCode)
			}
			if n := len(e.decider.requests()); n != 0 {
				t.Fatalf("Decide called %d times", n)
			}
			if strings.Contains(rec.Body.String(), testSigningSecret) {
				t.Fatal("the response shows the signing secret")
			}
		})
	}
}

func TestInteractionReplayed(t *testing.T) {
	e := newEnv(t, nil)
	ch, ts, value := e.heldForApproval("rot_replay01", rotator.GateStart)
	first := signedRequest(t, testSigningSecret, time.Now(), blockActions(e.slack.apiURL(), "UANA", slackapproval.ActionApprove, value, ch, ts))
	raw, err := io.ReadAll(first.Body)
	if err != nil {
		t.Fatal(err)
	}
	body := string(raw)
	for i, want := range []int{http.StatusOK, http.StatusUnauthorized} {
		r := httptest.NewRequest(http.MethodPost, "/v1/slack/interactions", strings.NewReader(body))
		r.Header = first.Header.Clone()
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, r)
		e.h.wg.Wait()
		if rec.Code != want {
			t.Fatalf("request %d: status %d, want %d", i+1, rec.Code, want)
		}
	}
	if n := len(e.decider.requests()); n != 1 {
		t.Fatalf("Decide called %d times, want 1", n)
	}
}

// TestClickRefused: clicks that are authentic but not acceptable get an
// ephemeral answer and record nothing, and no decision is shown.
func TestClickRefused(t *testing.T) {
	tests := map[string]struct {
		mod        func(c *Config)
		setup      func(e *env)
		user       string
		value      func(v string) string
		wantDecide int
		wantReply  string
	}{
		"unknown rotation": {user: "UANA", value: func(string) string { return "rot_nope0001:start" },
			wantReply: "unknown to rekey"},
		"malformed value": {user: "UANA", value: func(string) string { return "rot_nope0001" },
			wantReply: "not one rekey understands"},
		"user outside the allow-list": {user: "UMALLORY", wantReply: "not allowed"},
		"user not in the approver group": {mod: func(c *Config) { c.Approvers = Approvers{UserGroups: []string{"SSECOPS"}} },
			user: "UEVE", wantReply: "not allowed"},
		"group membership read at click time": {mod: func(c *Config) { c.Approvers = Approvers{UserGroups: []string{"SSECOPS"}} },
			setup: func(e *env) { e.slack.mu.Lock(); e.slack.groups["SSECOPS"] = nil; e.slack.mu.Unlock() },
			user:  "UBOB", wantReply: "not allowed"},
		"group lookup fails": {mod: func(c *Config) { c.Approvers = Approvers{UserGroups: []string{"SSECOPS"}} },
			setup: func(e *env) {
				e.slack.fail("usergroups.users.list", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
			},
			user: "UBOB", wantReply: "could not check"},
		"rotation expired": {setup: func(e *env) {
			e.rotations.put(&rotator.Rotation{ID: "rot_ref00001", Key: "payments-api", Phase: rotator.PhaseExpired})
		}, user: "UANA", wantReply: "no longer waiting"},
		"button of an earlier gate": {setup: func(e *env) {
			e.rotations.put(&rotator.Rotation{ID: "rot_ref00001", Key: "payments-api", Phase: rotator.PhaseRevoking, Hold: rotator.HoldApproval})
		}, user: "UANA", wantReply: "now waits on the revoke gate"},
		"profile lookup fails": {setup: func(e *env) {
			e.slack.fail("users.info", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) })
		}, user: "UANA", wantReply: "could not look up your Slack profile"},
		"engine: self-approval": {setup: func(e *env) {
			e.decider.decide = func(rotator.ApproveRequest) (*rotator.Rotation, error) {
				return nil, fmt.Errorf("ana@example.com: %w", rotator.ErrSelfApproval)
			}
		}, user: "UANA", wantDecide: 1, wantReply: "someone else must approve"},
		"engine: click after expiry": {setup: func(e *env) {
			e.decider.decide = func(rotator.ApproveRequest) (*rotator.Rotation, error) {
				return nil, fmt.Errorf("rotation rot_ref00001 (expired): %w", rotator.ErrNoGate)
			}
		}, user: "UANA", wantDecide: 1, wantReply: "no longer waiting for a decision"},
		"engine: not an approver of the key": {setup: func(e *env) {
			e.decider.decide = func(rotator.ApproveRequest) (*rotator.Rotation, error) {
				return nil, fmt.Errorf("bob@example.com: %w for key payments-api", rotator.ErrNotApprover)
			}
		}, user: "UBOB", wantDecide: 1, wantReply: "not an approver of key"},
		"engine: the clicker left": {setup: func(e *env) {
			e.decider.decide = func(rotator.ApproveRequest) (*rotator.Rotation, error) {
				return nil, &rotator.DepartedError{Departure: rotator.Departure{Who: "ana@example.com", At: time.Date(2026, 12, 5, 3, 1, 0, 0, time.UTC), Via: "hr"},
					What: "decisions"}
			}
		}, user: "UANA", wantDecide: 1, wantReply: "as having left (ana@example.com left on 2026-12-05 03:01 UTC (departure via hr); their decisions no longer count)"},
		"engine: store down": {setup: func(e *env) {
			e.decider.decide = func(rotator.ApproveRequest) (*rotator.Rotation, error) {
				return nil, fmt.Errorf("database is locked")
			}
		}, user: "UANA", wantDecide: 1, wantReply: "could not record your decision"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, tc.mod)
			ch, ts, value := e.heldForApproval("rot_ref00001", rotator.GateStart)
			if tc.setup != nil {
				tc.setup(e)
			}
			if tc.value != nil {
				value = tc.value(value)
			}
			if code := e.click(blockActions(e.slack.apiURL(), tc.user, slackapproval.ActionApprove, value, ch, ts)); code != http.StatusOK {
				t.Fatalf("status %d, want 200 (Slack is answered before the checks)", code)
			}
			if n := len(e.decider.requests()); n != tc.wantDecide {
				t.Fatalf("Decide called %d times, want %d", n, tc.wantDecide)
			}
			eph := e.slack.ephemerals()
			if len(eph) != 1 || !strings.Contains(eph[0], tc.wantReply) {
				t.Fatalf("ephemeral replies = %q, want one containing %q", eph, tc.wantReply)
			}
			if got := e.messages.shown(); len(got) != 0 {
				t.Fatalf("%d decisions shown", len(got))
			}
		})
	}
}

// TestSecondClick: the engine refuses a second decision by the same
// person; the clicker is told, and the message shows the one decision.
func TestSecondClick(t *testing.T) {
	e := newEnv(t, nil)
	ch, ts, value := e.heldForApproval("rot_twice001", rotator.GateStart)
	decided := false
	e.decider.decide = func(req rotator.ApproveRequest) (*rotator.Rotation, error) {
		if decided {
			return nil, fmt.Errorf("%s on start: %w", req.Approver, rotator.ErrDecided)
		}
		decided = true
		return &rotator.Rotation{ID: req.RotationID}, nil
	}
	e.click(blockActions(e.slack.apiURL(), "UANA", slackapproval.ActionApprove, value, ch, ts))
	again := blockActions(e.slack.apiURL(), "UANA", slackapproval.ActionApprove, value, ch, ts)
	again["trigger_id"] = "789.012.def" // a new click: a new request, same button
	e.click(again)
	if n := len(e.decider.requests()); n != 2 {
		t.Fatalf("Decide called %d times, want 2", n)
	}
	if eph := e.slack.ephemerals(); len(eph) != 1 || !strings.Contains(eph[0], "already decided the start gate") {
		t.Fatalf("ephemeral replies = %q", eph)
	}
	if got := e.messages.shown(); len(got) != 1 {
		t.Fatalf("%d decisions shown, want 1", len(got))
	}
}

func TestIgnoresOtherInteractions(t *testing.T) {
	e := newEnv(t, nil)
	for name, payload := range map[string]any{
		"view submission": map[string]any{"type": "view_submission", "user": map[string]any{"id": "UANA"}},
		"other button":    blockActions(e.slack.apiURL(), "UANA", "someone_elses_button", "x", "CREKEY", "1"),
	} {
		if code := e.click(payload); code != http.StatusOK {
			t.Fatalf("%s: status %d, want 200", name, code)
		}
	}
	if len(e.decider.requests()) != 0 || len(e.slack.all()) != 0 {
		t.Fatal("a foreign interaction caused work")
	}
}

func TestClosedRefusesClicks(t *testing.T) {
	e := newEnv(t, nil)
	ch, ts, value := e.heldForApproval("rot_close001", rotator.GateStart)
	if err := e.h.Close(); err != nil {
		t.Fatal(err)
	}
	if code := e.click(blockActions(e.slack.apiURL(), "UANA", slackapproval.ActionApprove, value, ch, ts)); code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503 once closed", code)
	}
	if len(e.decider.requests()) != 0 {
		t.Fatal("a click was handled after Close")
	}
}

func TestTrustedResponseURL(t *testing.T) {
	h := &Handler{cfg: Config{APIURL: "http://127.0.0.1:4567/"}}
	tests := map[string]bool{
		"https://hooks.slack.com/actions/T1/2/abc": true,
		"https://hooks.slack-gov.com/actions/T1":   true,
		"http://hooks.slack.com/actions/T1":        false,
		"https://evil.example/slack.com":           false,
		"https://slack.com.evil.example/x":         false,
		"http://127.0.0.1:4567/respond/x":          true,
		"http://127.0.0.1:9999/respond/x":          false,
		"not a url":                                false,
	}
	for raw, want := range tests {
		if got := h.trustedResponseURL(raw); got != want {
			t.Errorf("trustedResponseURL(%q) = %v, want %v", raw, got, want)
		}
	}
}
