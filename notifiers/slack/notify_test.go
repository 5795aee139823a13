package slack

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/internal/slackapproval"
	"github.com/rekeyhq/rekey/rotator"
)

// TestRotationOneParentMessage drives a staged rotation through every phase
// and checks it makes one parent message, updated in place, plus thread
// replies for the notable steps; a redelivery of every event changes
// nothing.
func TestRotationOneParentMessage(t *testing.T) {
	e := newEnv(t, nil)
	fp := rotator.Fingerprint(fakeSecret)
	b := newEvents("rot_life0001", "payments-api")
	A, M, S, V, C, D, R, W, CL := rotator.PhaseAwaitingApproval, rotator.PhaseMinting, rotator.PhaseStaging, rotator.PhaseVerifying,
		rotator.PhaseCuttingOver, rotator.PhaseDraining, rotator.PhaseRevoking, rotator.PhaseWatching, rotator.PhaseCleaning
	seq := []rotator.Event{
		b.started(),
		b.held(A, rotator.HoldApproval, "start approval 0/1", rotator.SeverityWarning),
		b.ev(rotator.EventApproval, A, rotator.SeverityInfo, "bob@example.com approved the start gate of payments-api (via cli)",
			map[string]string{"gate": "start", "verdict": "approve", "approver": "bob@example.com"}),
		b.phase(A, M, map[string]string{"gate": "start"}),
		b.phase(M, S, map[string]string{"generation": "2", "issuer_id": "key_123", "fingerprint": fp}),
		b.phase(S, V, map[string]string{"sinks": "2"}),
		b.phase(V, C, nil),
		b.phase(C, D, map[string]string{"generation": "2"}),
		b.phase(D, R, map[string]string{"quiet_for": "5m0s", "polls": "10", "source": "prometheus"}),
		b.phase(R, W, map[string]string{"generation": "1", "issuer_id": "key_122", "by": "rekey", "fingerprint": fp}),
		b.phase(W, CL, map[string]string{"alerted": "false"}),
		b.ev(rotator.EventFinished, rotator.PhaseDone, rotator.SeverityInfo, "rotation of payments-api ended: done", nil),
	}
	e.notify(seq...)

	parents := e.slack.parents()
	if len(parents) != 1 {
		t.Fatalf("%d parent messages, want 1", len(parents))
	}
	parent := parents[0]
	if parent.Form.Get("channel") != "#rekey" || !strings.Contains(parent.Form.Get("text"), "payments-api") {
		t.Errorf("parent posted to %q with text %q", parent.Form.Get("channel"), parent.Form.Get("text"))
	}
	const ts, ch = "1700000000.000001", "CREKEY"
	updates := e.slack.byMethod("chat.update")
	if len(updates) != len(seq)-1 {
		t.Fatalf("%d updates, want %d", len(updates), len(seq)-1)
	}
	for i, u := range updates {
		if u.Form.Get("channel") != ch || u.Form.Get("ts") != ts {
			t.Fatalf("update %d targets %s/%s, want %s/%s", i, u.Form.Get("channel"), u.Form.Get("ts"), ch, ts)
		}
		ev := seq[i+1]
		if want := label(ev.Phase); !strings.Contains(u.Form.Get("text"), want) {
			t.Errorf("update %d (%s) text %q does not show phase %q", i, ev.Kind, u.Form.Get("text"), want)
		}
		buttons := u.buttons(t)
		if i == 0 || i == 1 { // held for approval, then the approval event (still held)
			want := map[string]string{slackapproval.ActionApprove: "rot_life0001:start", slackapproval.ActionDeny: "rot_life0001:start"}
			if len(buttons) != 2 || buttons[slackapproval.ActionApprove] != want[slackapproval.ActionApprove] || buttons[slackapproval.ActionDeny] != want[slackapproval.ActionDeny] {
				t.Errorf("update %d buttons = %v, want %v", i, buttons, want)
			}
		} else if len(buttons) != 0 {
			t.Errorf("update %d (%s → %s) still has buttons %v", i, ev.Kind, ev.Phase, buttons)
		}
	}
	last := updates[len(updates)-1].text(t)
	for _, want := range []string{"✓ approval", "✓ cleaning", "✓ done", "Approved", "bob@example.com", "key is 91 days old"} {
		if !strings.Contains(last, want) {
			t.Errorf("final message lacks %q: %s", want, last)
		}
	}

	replies := e.slack.replies()
	wantReplies := []string{"waits: start approval 0/1", "approved the start gate", "Minted generation 2 (fingerprint `" + rotator.ShortFingerprint(fp) + "`)",
		"Staged the new key in 2 sink", "Cut over: generation 2", "Drained", "Revoked generation 1", "ended: done"}
	if len(replies) != len(wantReplies) {
		var got []string
		for _, r := range replies {
			got = append(got, r.Form.Get("text"))
		}
		t.Fatalf("%d thread replies, want %d: %q", len(replies), len(wantReplies), got)
	}
	for i, r := range replies {
		if r.Form.Get("thread_ts") != ts || r.Form.Get("channel") != ch {
			t.Errorf("reply %d in %s/%s, want thread %s in %s", i, r.Form.Get("channel"), r.Form.Get("thread_ts"), ts, ch)
		}
		if !strings.Contains(r.Form.Get("text"), wantReplies[i]) {
			t.Errorf("reply %d = %q, want %q", i, r.Form.Get("text"), wantReplies[i])
		}
	}
	if strings.Contains(e.slack.dump(), fp) {
		t.Error("the full fingerprint reached Slack; messages show the short form")
	}

	before := len(e.slack.all())
	e.notify(seq...) // the dispatcher redelivers after a restart
	if after := len(e.slack.all()); after != before {
		t.Fatalf("redelivery made %d more Slack calls, want 0", after-before)
	}
	e.assertNoLeak()
}

func TestReasonFromRotationReader(t *testing.T) {
	e := newEnv(t, nil)
	e.rotations.put(&rotator.Rotation{ID: "rot_reason01", Key: "payments-api", Reason: "maxage: 91 days > 90 days", Actor: "policy:maxage"})
	b := newEvents("rot_reason01", "payments-api")
	e.notify(b.started())
	if got := e.slack.parents()[0].text(t); !strings.Contains(got, "maxage: 91 days &gt; 90 days") {
		t.Fatalf("parent lacks the escaped reason: %s", got)
	}
}

func TestRepeatedEventIDDeliveredOnce(t *testing.T) {
	tests := map[string]struct {
		ev rotator.Event
	}{
		"rotation event": {ev: newEvents("rot_rep00001", "payments-api").started()},
		"standalone event": {ev: rotator.Event{ID: "ev_age01", Kind: rotator.EventWarnAge, Severity: rotator.SeverityWarning,
			Key: "payments-api", Message: "payments-api will be rotated soon", At: time.Now()}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.notify(tc.ev, tc.ev, tc.ev)
			if got := len(e.slack.byMethod("chat.postMessage")); got != 1 {
				t.Fatalf("%d posts, want 1", got)
			}
			// and after a restart, with the same state store
			e.n = e.notifier(nil)
			e.notify(tc.ev)
			if got := len(e.slack.byMethod("chat.postMessage")); got != 1 {
				t.Fatalf("%d posts after restart, want 1", got)
			}
		})
	}
}

// TestSlackDown: while Slack is unreachable Notify returns retryable
// errors; once it is back (a new server, a restarted notifier, the same
// state store) the rotation's message is updated, not posted again.
func TestSlackDown(t *testing.T) {
	e := newEnv(t, nil)
	b := newEvents("rot_down0001", "payments-api")
	e.notify(b.started())
	parent := e.slack.parents()[0]
	e.slack.srv.Stop()

	ev := b.phase(rotator.PhaseAwaitingApproval, rotator.PhaseMinting, nil)
	for range 2 { // as the dispatcher retries
		err := e.n.Notify(context.Background(), ev)
		if err == nil || rotator.IsPermanent(err) || rotator.ReasonOf(err) != rotator.ReasonTransient {
			t.Fatalf("Notify with Slack down = %v (permanent %v, reason %s), want a transient error", err, rotator.IsPermanent(err), rotator.ReasonOf(err))
		}
		if strings.Contains(err.Error(), testToken) {
			t.Fatal("error shows the token")
		}
	}
	standalone := rotator.Event{ID: "ev_down", Kind: rotator.EventWarnAge, Severity: rotator.SeverityWarning, Key: "k", Message: "soon"}
	if err := e.n.Notify(context.Background(), standalone); err == nil || rotator.IsPermanent(err) {
		t.Fatalf("standalone Notify with Slack down = %v, want retryable", err)
	}

	e.slack = newFakeSlack(t)
	e.n = e.notifier(nil)
	e.notify(ev)
	if got := len(e.slack.parents()); got != 0 {
		t.Fatalf("%d parent posts after the outage, want 0 (the message exists)", got)
	}
	updates := e.slack.byMethod("chat.update")
	if len(updates) != 1 || updates[0].Form.Get("ts") != "1700000000.000001" || updates[0].Form.Get("channel") != "CREKEY" {
		t.Fatalf("updates after the outage = %+v, want one chat.update of the original message", updates)
	}
	if !strings.Contains(updates[0].Form.Get("text"), "minting") {
		t.Errorf("update text %q does not show the new phase", updates[0].Form.Get("text"))
	}
	if parent.Form.Get("ts") != "" {
		t.Fatal("the recorded post carries no ts of its own")
	}
}

func TestRateLimited(t *testing.T) {
	tests := map[string]struct {
		answer    http.HandlerFunc
		wantDelay time.Duration
	}{
		"429 with Retry-After": {answer: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"ok":false,"error":"ratelimited"}`))
		}, wantDelay: 7 * time.Second},
		"429 without Retry-After": {answer: func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusTooManyRequests)
		}},
		"ratelimited error": {answer: func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`{"ok":false,"error":"ratelimited"}`))
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.slack.fail("chat.postMessage", tc.answer)
			ev := newEvents("rot_rl000001", "payments-api").started()
			err := e.n.Notify(context.Background(), ev)
			if err == nil || rotator.IsPermanent(err) || rotator.ReasonOf(err) != rotator.ReasonRateLimited {
				t.Fatalf("err = %v, want retryable rate_limited", err)
			}
			var ra interface{ RetryAfter() time.Duration }
			if !errors.As(err, &ra) || ra.RetryAfter() != tc.wantDelay {
				t.Fatalf("RetryAfter = %v, want %v", ra, tc.wantDelay)
			}
			e.slack.fail("chat.postMessage", nil)
			e.notify(ev)
			if got := len(e.slack.parents()); got != 1 {
				t.Fatalf("%d parents after the retry, want 1", got)
			}
		})
	}
}

func TestErrorClassification(t *testing.T) {
	apiErr := func(code string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`{"ok":false,"error":"` + code + `"}`))
		}
	}
	status := func(code int) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
	}
	tests := map[string]struct {
		answer        http.HandlerFunc
		wantPermanent bool
		wantReason    rotator.Reason
	}{
		"invalid_auth":      {answer: apiErr("invalid_auth"), wantPermanent: true, wantReason: rotator.ReasonAuth},
		"missing_scope":     {answer: apiErr("missing_scope"), wantPermanent: true, wantReason: rotator.ReasonAuth},
		"channel_not_found": {answer: apiErr("channel_not_found"), wantPermanent: true, wantReason: rotator.ReasonInvalid},
		"not_in_channel":    {answer: apiErr("not_in_channel"), wantPermanent: true, wantReason: rotator.ReasonInvalid},
		"internal_error":    {answer: apiErr("internal_error"), wantReason: rotator.ReasonTransient},
		"HTTP 500":          {answer: status(http.StatusInternalServerError), wantReason: rotator.ReasonTransient},
		"HTTP 503":          {answer: status(http.StatusServiceUnavailable), wantReason: rotator.ReasonTransient},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.slack.fail("chat.postMessage", tc.answer)
			err := e.n.Notify(context.Background(), newEvents("rot_err00001", "payments-api").started())
			if err == nil {
				t.Fatal("no error")
			}
			if rotator.IsPermanent(err) != tc.wantPermanent || rotator.ReasonOf(err) != tc.wantReason {
				t.Fatalf("err = %v: permanent %v reason %s, want %v %s", err, rotator.IsPermanent(err), rotator.ReasonOf(err), tc.wantPermanent, tc.wantReason)
			}
			if !strings.HasPrefix(err.Error(), "slack: chat.postMessage #rekey") || strings.Contains(err.Error(), testToken) {
				t.Fatalf("error text %q: want the adapter and channel named, no token", err)
			}
		})
	}
}

func TestStateStoreDownIsRetryable(t *testing.T) {
	e := newEnv(t, nil)
	e.state.fail = errors.New("database is locked")
	err := e.n.Notify(context.Background(), newEvents("rot_st000001", "payments-api").started())
	if err == nil || rotator.IsPermanent(err) {
		t.Fatalf("err = %v, want retryable", err)
	}
	if got := len(e.slack.all()); got != 0 {
		t.Fatalf("%d Slack calls without state, want 0 (nothing posted that could not be remembered)", got)
	}
}

// TestMessageDeletedIsPostedAgain: when someone deletes the parent message,
// the next event posts a new one and keeps updating that.
func TestMessageDeletedIsPostedAgain(t *testing.T) {
	e := newEnv(t, nil)
	b := newEvents("rot_del00001", "payments-api")
	e.notify(b.started())
	e.slack.fail("chat.update", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"ok":false,"error":"message_not_found"}`))
	})
	e.notify(b.phase(rotator.PhaseAwaitingApproval, rotator.PhaseMinting, nil))
	e.slack.fail("chat.update", nil)
	e.notify(b.phase(rotator.PhaseMinting, rotator.PhaseStaging, map[string]string{"generation": "2"}))
	parents := e.slack.parents()
	if len(parents) != 2 {
		t.Fatalf("%d parents, want 2 (the original and its replacement)", len(parents))
	}
	updates := e.slack.byMethod("chat.update")
	if len(updates) != 1 || updates[0].Form.Get("ts") != "1700000000.000003" {
		t.Fatalf("updates = %+v, want one of the replacement", updates)
	}
}

// The rotation's message says what its drain gate proves, from the
// started event, with a warning sign when slow consumers would get 401s.
func TestParentShowsWhatTheGateProves(t *testing.T) {
	e := newEnv(t, nil)
	b := newEvents("rot_gate0001", "payments-api")
	st := b.started()
	st.Fields = map[string]string{"gate": "sees only failed authentication (prom), not use of the old key", "gate_warning": "payments-api: …"}
	e.notify(st, b.phase(rotator.PhaseAwaitingApproval, rotator.PhaseMinting, nil))
	updates := e.slack.byMethod("chat.update")
	if len(updates) != 1 {
		t.Fatalf("%d updates", len(updates))
	}
	text := updates[0].text(t)
	if !strings.Contains(text, ":warning: *Drain gate* sees only failed authentication (prom), not use of the old key") {
		t.Fatalf("the message does not show the gate: %s", text)
	}
	e.assertNoLeak()
}
