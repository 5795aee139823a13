package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/notifiers/webhook"
)

// The harness's webhook receiver must tell a delivery cut short by a kill
// (the body ends before its Content-Length) from a forged one: only the
// forgery is "bad"; the cut one waits for its redelivery.
func TestReceiverTellsCutShortFromForged(t *testing.T) {
	t.Parallel()
	w := newWorld(t, params{})
	addr := strings.TrimPrefix(w.hook.URL, "http://")
	body := `{"kind":"rotation.done","message":"hello"}`
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	sig, err := webhook.Sign(webhookSecret, "msg_cut", ts, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	send := func(id, sig string, announced int, sent string) *http.Response {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"+
			"webhook-id: %s\r\nwebhook-timestamp: %s\r\nwebhook-signature: %s\r\n\r\n%s", addr, announced, id, ts, sig, sent)
		if announced > len(sent) {
			// The sender dies mid-body: its half of the connection closes.
			_ = c.(*net.TCPConn).CloseWrite()
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return nil // the server may just drop a broken request
		}
		resp.Body.Close()
		return resp
	}

	send("msg_cut", sig, len(body), body[:10])
	waitUntil(t, "the cut delivery is recorded", func() bool { return len(w.undelivered()) == 1 })
	if _, bad := w.notifications(); bad != 0 {
		t.Fatalf("a cut delivery counted as %d bad signatures", bad)
	}

	if resp := send("msg_forged", "v1,"+strings.Repeat("A", 44), len(body), body); resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged delivery answered %v, want 401", resp)
	}
	if _, bad := w.notifications(); bad != 1 {
		t.Fatalf("bad signatures = %d after one forgery, want 1", bad)
	}

	if resp := send("msg_cut", sig, len(body), body); resp == nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("redelivery answered %v, want 204", resp)
	}
	if ids := w.undelivered(); len(ids) != 0 {
		t.Fatalf("still undelivered after the redelivery: %v", ids)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := patient(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}
