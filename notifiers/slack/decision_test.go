package slack

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/internal/slackapproval"
	"github.com/rekeyhq/rekey/rotator"
)

// heldForApproval posts a rotation held on gate g and stores it in the
// rotation reader; it returns the rotation, the parent's location and the
// button value shown.
func (e *env) heldForApproval(id string, g rotator.Gate) (*rotator.Rotation, slackapproval.Message, string) {
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
	want := slackapproval.ButtonValue(id, g)
	if buttons[slackapproval.ActionApprove] != want || buttons[slackapproval.ActionDeny] != want {
		e.t.Fatalf("buttons = %v, want both valued %q", buttons, want)
	}
	return r, slackapproval.Message{Channel: last.Form.Get("channel"), TS: last.Form.Get("ts")}, want
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

func TestShowDecision(t *testing.T) {
	tests := map[string]struct {
		gate    rotator.Gate
		user    string
		by      string
		verdict rotator.Verdict
		shown   string
	}{
		"approve start gate": {gate: rotator.GateStart, user: "UANA", by: "ana@example.com",
			verdict: rotator.VerdictApprove, shown: "*Approved* (start gate) by <@UANA> (ana@example.com)"},
		"deny revoke gate": {gate: rotator.GateRevoke, user: "UBOB", by: "bob@example.com",
			verdict: rotator.VerdictDeny, shown: "*Denied* (revoke gate) by <@UBOB> (bob@example.com)"},
		"approve drain gate": {gate: rotator.GateDrain, user: "UEVE", by: "eve@example.com",
			verdict: rotator.VerdictApprove, shown: "*Approved* (drain gate) by <@UEVE>"},
		"user without email": {gate: rotator.GateStart, user: "UNOMAIL", by: "slack:UNOMAIL",
			verdict: rotator.VerdictApprove, shown: "by <@UNOMAIL> (slack:UNOMAIL)"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, nil)
			r, at, _ := e.heldForApproval("rot_appr0001", tc.gate)
			d := slackapproval.Decision{Gate: tc.gate, Verdict: tc.verdict, By: tc.by, SlackID: tc.user, At: time.Now()}
			if err := e.n.ShowDecision(context.Background(), r, at, d); err != nil {
				t.Fatal(err)
			}
			shown := e.decisionUpdates()
			if len(shown) != 1 {
				t.Fatalf("%d updates showing a decision, want 1", len(shown))
			}
			u := shown[0]
			if u.Form.Get("channel") != at.Channel || u.Form.Get("ts") != at.TS {
				t.Errorf("decision shown in %s/%s, want the parent %s/%s", u.Form.Get("channel"), u.Form.Get("ts"), at.Channel, at.TS)
			}
			if !strings.Contains(u.text(t), tc.shown) {
				t.Errorf("update lacks %q:\n%s", tc.shown, u.text(t))
			}
			if b := u.buttons(t); len(b) != 0 {
				t.Errorf("buttons still shown after the decision: %v", b)
			}
			// The engine's approval event that follows keeps one decision line.
			b := newEvents("rot_appr0001", "payments-api")
			b.n = 100
			if tc.gate != rotator.GateDrain {
				e.notify(b.ev(rotator.EventApproval, rotator.PhaseAwaitingApproval, rotator.SeverityInfo, "decided via slack",
					map[string]string{"gate": string(tc.gate), "verdict": string(tc.verdict), "approver": tc.by}))
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

// TestShowDecisionStateLost: with no record of the message (a wiped state
// store), the decision is shown on the message that was clicked, rebuilt
// from the rotation.
func TestShowDecisionStateLost(t *testing.T) {
	e := newEnv(t, nil)
	r, at, _ := e.heldForApproval("rot_lost0001", rotator.GateStart)
	e.state.mu.Lock()
	clear(e.state.m)
	e.state.mu.Unlock()
	d := slackapproval.Decision{Gate: rotator.GateStart, Verdict: rotator.VerdictApprove, By: "ana@example.com", SlackID: "UANA", At: time.Now()}
	if err := e.n.ShowDecision(context.Background(), r, at, d); err != nil {
		t.Fatal(err)
	}
	shown := e.decisionUpdates()
	if len(shown) != 1 || shown[0].Form.Get("channel") != at.Channel || shown[0].Form.Get("ts") != at.TS {
		t.Fatalf("decision updates %v, want one on %v", shown, at)
	}
	if b := shown[0].buttons(t); len(b) != 0 {
		t.Errorf("buttons still shown: %v", b)
	}
}

// TestNoButtonsWithoutWebhook: without a slack webhook to receive clicks,
// no button is posted.
func TestNoButtonsWithoutWebhook(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Buttons = false })
	b := newEvents("rot_nobtn001", "payments-api")
	e.notify(b.started(), b.held(rotator.PhaseAwaitingApproval, rotator.HoldApproval, "start approval 0/1", rotator.SeverityWarning))
	for _, c := range append(e.slack.parents(), e.slack.byMethod("chat.update")...) {
		if b := c.buttons(t); len(b) != 0 {
			t.Fatalf("buttons %v posted although no webhook receives clicks", b)
		}
	}
}
