package slack

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// heldForApproval posts a rotation held on gate g and stores it in the
// rotation reader; it returns the parent's channel id and ts and the
// button value shown.
func (e *env) heldForApproval(id string, g rotator.Gate) (channel, ts, value string) {
	e.t.Helper()
	b := newEvents(id, "payments-api")
	r := &rotator.Rotation{ID: id, Key: "payments-api", Trigger: rotator.TriggerManual, Actor: "ana@example.com", Mode: rotator.ModeStaged,
		Phase: rotator.PhaseAwaitingApproval, Hold: rotator.HoldApproval}
	evs := []rotator.Event{b.started(), b.held(rotator.PhaseAwaitingApproval, rotator.HoldApproval, "start approval 0/1", rotator.SeverityWarning)}
	switch g {
	case rotator.GateRevoke:
		r.Phase = rotator.PhaseRevoking
		evs = append(evs, b.held(rotator.PhaseRevoking, rotator.HoldApproval, "revoke approval 0/1", rotator.SeverityWarning))
	case rotator.GateDrain:
		r.Phase, r.Hold = rotator.PhaseDraining, rotator.HoldDrainTimeout
		evs = append(evs, b.held(rotator.PhaseDraining, rotator.HoldDrainTimeout, "traffic has not drained after 1h", rotator.SeverityCritical))
	}
	e.rotations.put(r)
	e.notify(evs...)
	updates := e.slack.byMethod("chat.update")
	last := updates[len(updates)-1]
	buttons := last.buttons(e.t)
	want := id + ":" + string(g)
	if buttons[ActionApprove] != want || buttons[ActionDeny] != want {
		e.t.Fatalf("buttons = %v, want both valued %q", buttons, want)
	}
	return last.Form.Get("channel"), last.Form.Get("ts"), want
}

// decisionUpdates are chat.update calls that show a decision.
func (e *env) decisionUpdates() []call {
	var out []call
	for _, u := range e.slack.byMethod("chat.update") {
		txt := u.text(e.t)
		if strings.Contains(txt, "*Approved*") || strings.Contains(txt, "*Denied*") {
			out = append(out, u)
		}
	}
	return out
}

func TestApproveFromSlack(t *testing.T) {
	tests := map[string]struct {
		gate     rotator.Gate
		user     string
		action   string
		approver string
		verdict  rotator.Verdict
		shown    string
	}{
		"approve start gate, listed user": {gate: rotator.GateStart, user: "UANA", action: ActionApprove, approver: "ana@example.com",
			verdict: rotator.VerdictApprove, shown: "*Approved* (start gate) by <@UANA> (ana@example.com)"},
		"deny revoke gate, group member": {gate: rotator.GateRevoke, user: "UBOB", action: ActionDeny, approver: "bob@example.com",
			verdict: rotator.VerdictDeny, shown: "*Denied* (revoke gate) by <@UBOB> (bob@example.com)"},
		"approve drain gate": {gate: rotator.GateDrain, user: "UEVE", action: ActionApprove, approver: "eve@example.com",
			verdict: rotator.VerdictApprove, shown: "*Approved* (drain gate) by <@UEVE>"},
		"user without email": {gate: rotator.GateStart, user: "UNOMAIL", action: ActionApprove, approver: "slack:UNOMAIL",
			verdict: rotator.VerdictApprove, shown: "by <@UNOMAIL> (slack:UNOMAIL)"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.Approvers.UserIDs = append(c.Approvers.UserIDs, "UNOMAIL") })
			ch, ts, value := e.heldForApproval("rot_appr0001", tc.gate)
			if code := e.click(blockActions(e.slack.apiURL(), tc.user, tc.action, value, ch, ts)); code != http.StatusOK {
				t.Fatalf("status %d, want 200", code)
			}
			reqs := e.decider.requests()
			want := rotator.ApproveRequest{RotationID: "rot_appr0001", Gate: tc.gate, Approver: tc.approver, Verdict: tc.verdict, Via: "slack", Comment: "slack user " + tc.user}
			if len(reqs) != 1 || reqs[0] != want {
				t.Fatalf("Decide calls = %+v, want [%+v]", reqs, want)
			}
			shown := e.decisionUpdates()
			if len(shown) != 1 {
				t.Fatalf("%d updates showing a decision, want 1", len(shown))
			}
			u := shown[0]
			if u.Form.Get("channel") != ch || u.Form.Get("ts") != ts {
				t.Errorf("decision shown in %s/%s, want the parent %s/%s", u.Form.Get("channel"), u.Form.Get("ts"), ch, ts)
			}
			if !strings.Contains(u.text(t), tc.shown) {
				t.Errorf("update lacks %q:\n%s", tc.shown, u.text(t))
			}
			if b := u.buttons(t); len(b) != 0 {
				t.Errorf("buttons still shown after the decision: %v", b)
			}
			if eph := e.slack.ephemerals(); len(eph) != 0 {
				t.Errorf("ephemeral replies on success: %q", eph)
			}
			// The engine's approval event that follows keeps one decision line.
			b := newEvents("rot_appr0001", "payments-api")
			b.n = 100
			if tc.gate != rotator.GateDrain {
				e.notify(b.ev(rotator.EventApproval, rotator.PhaseAwaitingApproval, rotator.SeverityInfo, "decided via slack",
					map[string]string{"gate": string(tc.gate), "verdict": string(tc.verdict), "approver": tc.approver}))
				updates := e.slack.byMethod("chat.update")
				lastText := updates[len(updates)-1].text(t)
				if n := strings.Count(lastText, "gate) by"); n != 1 {
					t.Errorf("%d decision lines after the engine's event, want 1:\n%s", n, lastText)
				}
				if b := updates[len(updates)-1].buttons(t); len(b) != 0 {
					t.Errorf("buttons came back before the engine held again: %v", b)
				}
			}
			e.assertNoLeak()
		})
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
			r := signedRequest(e.t, testSigningSecret, time.Now(), blockActions(e.slack.apiURL(), "UANA", ActionApprove, "rot_other001:start", "CREKEY", "1"))
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
			e.n.Interactions().ServeHTTP(rec, tc.req(e, blockActions(e.slack.apiURL(), "UANA", ActionApprove, value, ch, ts)))
			e.n.wg.Wait()
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
	first := signedRequest(t, testSigningSecret, time.Now(), blockActions(e.slack.apiURL(), "UANA", ActionApprove, value, ch, ts))
	raw, err := io.ReadAll(first.Body)
	if err != nil {
		t.Fatal(err)
	}
	body := string(raw)
	for i, want := range []int{http.StatusOK, http.StatusUnauthorized} {
		r := httptest.NewRequest(http.MethodPost, "/v1/slack/interactions", strings.NewReader(body))
		r.Header = first.Header.Clone()
		rec := httptest.NewRecorder()
		e.n.Interactions().ServeHTTP(rec, r)
		e.n.wg.Wait()
		if rec.Code != want {
			t.Fatalf("request %d: status %d, want %d", i+1, rec.Code, want)
		}
	}
	if n := len(e.decider.requests()); n != 1 {
		t.Fatalf("Decide called %d times, want 1", n)
	}
}

// TestClickRefused: clicks that are authentic but not acceptable get an
// ephemeral answer and record nothing, and no update claims success.
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
			if code := e.click(blockActions(e.slack.apiURL(), tc.user, ActionApprove, value, ch, ts)); code != http.StatusOK {
				t.Fatalf("status %d, want 200 (Slack is answered before the checks)", code)
			}
			if n := len(e.decider.requests()); n != tc.wantDecide {
				t.Fatalf("Decide called %d times, want %d", n, tc.wantDecide)
			}
			eph := e.slack.ephemerals()
			if len(eph) != 1 || !strings.Contains(eph[0], tc.wantReply) {
				t.Fatalf("ephemeral replies = %q, want one containing %q", eph, tc.wantReply)
			}
			if got := e.decisionUpdates(); len(got) != 0 {
				t.Fatalf("%d updates claim a decision", len(got))
			}
		})
	}
}

// TestSecondClick: the engine refuses a second decision by the same
// person; the clicker is told, and the message keeps the one decision.
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
	e.click(blockActions(e.slack.apiURL(), "UANA", ActionApprove, value, ch, ts))
	again := blockActions(e.slack.apiURL(), "UANA", ActionApprove, value, ch, ts)
	again["trigger_id"] = "789.012.def" // a new click: a new request, same button
	e.click(again)
	if n := len(e.decider.requests()); n != 2 {
		t.Fatalf("Decide called %d times, want 2", n)
	}
	if eph := e.slack.ephemerals(); len(eph) != 1 || !strings.Contains(eph[0], "already decided the start gate") {
		t.Fatalf("ephemeral replies = %q", eph)
	}
	if got := e.decisionUpdates(); len(got) != 1 {
		t.Fatalf("%d updates show a decision, want 1", len(got))
	}
}

func TestInteractionsDisabled(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.SigningSecretEnv, c.Approvers = "", Approvers{} })
	e.heldForApprovalNoButtons(t)
	rec := httptest.NewRecorder()
	e.n.Interactions().ServeHTTP(rec, signedRequest(t, testSigningSecret, time.Now(), map[string]any{"type": "block_actions"}))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("status %d, want 404 without a signing secret", rec.Code)
	}
}

func (e *env) heldForApprovalNoButtons(t *testing.T) {
	b := newEvents("rot_nobtn001", "payments-api")
	e.notify(b.started(), b.held(rotator.PhaseAwaitingApproval, rotator.HoldApproval, "start approval 0/1", rotator.SeverityWarning))
	for _, c := range append(e.slack.parents(), e.slack.byMethod("chat.update")...) {
		if b := c.buttons(t); len(b) != 0 {
			t.Fatalf("buttons %v posted although interactivity is off", b)
		}
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
