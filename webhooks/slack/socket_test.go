package slack

import (
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack/slacktest"

	"github.com/rekeyhq/rekey/internal/slackapproval"
	"github.com/rekeyhq/rekey/rotator"
)

// socketServer stands in for Slack's Socket Mode endpoint: the test drives
// each accepted WebSocket connection.
type socketServer struct {
	conns    chan *websocket.Conn
	done     chan struct{}
	appToken chan string
}

func newSocketServer(t *testing.T) *socketServer {
	s := &socketServer{conns: make(chan *websocket.Conn, 4), done: make(chan struct{}), appToken: make(chan string, 4)}
	t.Cleanup(func() {
		close(s.done)
		for {
			select {
			case c := <-s.conns:
				_ = c.Close()
			default:
				return
			}
		}
	})
	return s
}

func (s *socketServer) binder(c slacktest.Customize) {
	c.Handle("/apps.connections.open", func(w http.ResponseWriter, r *http.Request) {
		select {
		case s.appToken <- strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "):
		default:
		}
		writeJSON(w, map[string]any{"ok": true, "url": "ws://" + r.Host + "/socket"})
	})
	// Slack's client sends Origin: https://api.slack.com.
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	c.Handle("/socket", func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		select { // a hijacked connection outlives its handler
		case s.conns <- conn:
		case <-s.done:
			_ = conn.Close()
		}
	})
}

func TestSocketMode(t *testing.T) {
	ss := newSocketServer(t)
	e := newEnv(t, func(c *Config) {
		c.Mode, c.SigningSecretEnv, c.AppTokenEnv = ModeSocket, "", "REKEY_TEST_SLACK_APP"
	}, ss.binder)
	ch, ts, value := e.heldForApproval("rot_sock0001", rotator.GateStart)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := e.h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var conn *websocket.Conn
	select {
	case conn = <-ss.conns:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler did not connect")
	}
	defer conn.Close()
	if tok := <-ss.appToken; tok != testAppToken {
		t.Fatal("apps.connections.open was not called with the app-level token")
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	send := func(v any) {
		t.Helper()
		if err := conn.WriteJSON(v); err != nil {
			t.Fatal(err)
		}
	}
	envelope := func(id, user string) map[string]any {
		return map[string]any{"envelope_id": id, "type": "interactive", "accepts_response_payload": false,
			"payload": blockActions(e.slack.apiURL(), user, slackapproval.ActionApprove, value, ch, ts)}
	}
	ack := func(want string) {
		t.Helper()
		var got map[string]any
		if err := conn.ReadJSON(&got); err != nil {
			t.Fatal(err)
		}
		if got["envelope_id"] != want {
			t.Fatalf("ack = %v, want envelope %s", got, want)
		}
	}
	send(map[string]any{"type": "hello", "num_connections": 1, "connection_info": map[string]any{"app_id": "A0001"}})
	send(envelope("env-1", "UANA"))
	ack("env-1")
	waitFor(t, "the decision", func() bool { return len(e.decider.requests()) == 1 })
	want := rotator.ApproveRequest{RotationID: "rot_sock0001", Gate: rotator.GateStart, Approver: "ana@example.com", Verdict: rotator.VerdictApprove, Via: "slack", Comment: "slack user UANA"}
	if got := e.decider.requests()[0]; !reflect.DeepEqual(got, want) {
		t.Fatalf("Decide(%+v), want %+v", got, want)
	}
	waitFor(t, "the decision shown", func() bool { return len(e.messages.shown()) == 1 })
	if got := e.messages.shown()[0].at; got != (slackapproval.Message{Channel: ch, TS: ts}) {
		t.Fatalf("decision shown at %+v, want the clicked message", got)
	}

	redelivered := envelope("env-1", "UANA")
	redelivered["retry_attempt"] = 1
	send(redelivered)
	ack("env-1")
	send(envelope("env-2", "UMALLORY"))
	ack("env-2")
	waitFor(t, "the refusal", func() bool { return len(e.slack.ephemerals()) == 1 })
	if n := len(e.decider.requests()); n != 1 {
		t.Fatalf("Decide called %d times, want 1 (a redelivered envelope is handled once)", n)
	}
	if err := e.h.Close(); err != nil {
		t.Fatal(err)
	}
	e.assertNoLeak()
}

// TestSocketModeServesNoHTTP: in mode socket the HTTP endpoint does not
// exist, even for a correctly signed request.
func TestSocketModeServesNoHTTP(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Mode, c.SigningSecretEnv, c.AppTokenEnv = ModeSocket, "", "REKEY_TEST_SLACK_APP" })
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, signedRequest(t, testSigningSecret, time.Now(), map[string]any{"type": "block_actions"}))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("status %d, want 404 in mode socket", rec.Code)
	}
}

func TestStartIsNoOpInHTTPMode(t *testing.T) {
	e := newEnv(t, nil)
	if err := e.h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.h.Close(); err != nil {
		t.Fatal(err)
	}
}
