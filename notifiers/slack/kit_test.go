package slack

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/slack-go/slack/slacktest"
)

// Test credentials. fakeSecret is key material that the tests give to
// nothing: only its fingerprint travels in events, and it must appear
// nowhere.
const (
	testToken  = "xoxb-test-bot-token-0001"
	fakeSecret = "ka_live_Q3b9ZxW1mT7pL2vN8rK4sD6fH0jY5cGa"
)

// call is one request the fake Slack received.
type call struct {
	Method string
	Failed bool // answered by a failure override
	Form   url.Values
}

func (c call) blocks(t *testing.T) []map[string]any {
	t.Helper()
	raw := c.Form.Get("blocks")
	if raw == "" {
		return nil
	}
	var b []map[string]any
	if err := json.Unmarshal([]byte(raw), &b); err != nil {
		t.Fatalf("%s: blocks are not JSON: %v", c.Method, err)
	}
	return b
}

// text is every string in the message's blocks, decoded, one per line.
func (c call) text(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			b.WriteString(x + "\n")
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	for _, blk := range c.blocks(t) {
		walk(blk)
	}
	return b.String()
}

// buttons returns action_id → value of every button in the message.
func (c call) buttons(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, b := range c.blocks(t) {
		els, _ := b["elements"].([]any)
		for _, e := range els {
			m, _ := e.(map[string]any)
			if id, ok := m["action_id"].(string); ok {
				out[id], _ = m["value"].(string)
			}
		}
	}
	return out
}

// fakeSlack is slacktest's server with the methods rekey uses added (first
// registration wins): it records every call and answers with unique ts
// values and channel ids.
type fakeSlack struct {
	t   *testing.T
	srv *slacktest.Server

	mu       sync.Mutex
	calls    []call
	seq      int
	users    map[string]string // user id → email ("" = none)
	override map[string]http.HandlerFunc
}

var recordedMethods = []string{"chat.postMessage", "chat.update", "users.lookupByEmail"}

func newFakeSlack(t *testing.T, extra ...slacktest.Binder) *fakeSlack {
	t.Helper()
	f := &fakeSlack{
		t:        t,
		users:    map[string]string{"UANA": "ana@example.com", "UBOB": "bob@example.com", "UEVE": "eve@example.com", "UNOMAIL": ""},
		override: map[string]http.HandlerFunc{},
	}
	binders := append([]slacktest.Binder{func(c slacktest.Customize) {
		for _, m := range recordedMethods {
			c.Handle("/"+m, f.handle(m))
		}
	}}, extra...)
	f.srv = slacktest.NewTestServer(binders...)
	f.srv.Start()
	t.Cleanup(f.srv.Stop)
	return f
}

func (f *fakeSlack) apiURL() string { return f.srv.GetAPIURL() }

// fail makes method answer with h until reset.
func (f *fakeSlack) fail(method string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if h == nil {
		delete(f.override, method)
		return
	}
	f.override[method] = h
}

func (f *fakeSlack) handle(method string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		form := r.Form
		f.mu.Lock()
		h := f.override[method]
		f.calls = append(f.calls, call{Method: method, Form: form, Failed: h != nil})
		f.seq++
		seq := f.seq
		f.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch method {
		case "chat.postMessage":
			writeJSON(w, map[string]any{"ok": true, "channel": channelID(form.Get("channel")), "ts": fmt.Sprintf("1700000000.%06d", seq)})
		case "chat.update":
			if !strings.HasPrefix(form.Get("channel"), "C") { // as Slack: chat.update needs the id
				writeJSON(w, map[string]any{"ok": false, "error": "channel_not_found"})
				return
			}
			writeJSON(w, map[string]any{"ok": true, "channel": form.Get("channel"), "ts": form.Get("ts"), "text": form.Get("text")})
		case "users.lookupByEmail":
			id := ""
			f.mu.Lock()
			for uid, email := range f.users {
				if email != "" && email == form.Get("email") {
					id = uid
				}
			}
			f.mu.Unlock()
			f.writeUser(w, id, "users_not_found")
		}
	}
}

func (f *fakeSlack) writeUser(w http.ResponseWriter, id, notFound string) {
	f.mu.Lock()
	email, ok := f.users[id]
	f.mu.Unlock()
	if !ok {
		writeJSON(w, map[string]any{"ok": false, "error": notFound})
		return
	}
	writeJSON(w, map[string]any{"ok": true, "user": map[string]any{
		"id": id, "name": strings.ToLower(id), "profile": map[string]any{"email": email},
	}})
}

func writeJSON(w http.ResponseWriter, v any) { _ = json.NewEncoder(w).Encode(v) }

// channelID maps a channel name to a stable id, as Slack answers.
func channelID(ch string) string {
	if !strings.HasPrefix(ch, "#") {
		return ch
	}
	return "C" + strings.ToUpper(strings.NewReplacer("-", "", "_", "", ".", "").Replace(ch[1:]))
}

func (f *fakeSlack) all() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

func (f *fakeSlack) byMethod(method string) []call {
	var out []call
	for _, c := range f.all() {
		if c.Method == method && !c.Failed {
			out = append(out, c)
		}
	}
	return out
}

// parents are posts that start a message; replies are thread posts.
func (f *fakeSlack) parents() []call {
	var out []call
	for _, c := range f.byMethod("chat.postMessage") {
		if c.Form.Get("thread_ts") == "" {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeSlack) replies() []call {
	var out []call
	for _, c := range f.byMethod("chat.postMessage") {
		if c.Form.Get("thread_ts") != "" {
			out = append(out, c)
		}
	}
	return out
}

// dump is every text the fake received, except the bot token field.
func (f *fakeSlack) dump() string {
	var b strings.Builder
	for _, c := range f.all() {
		for k, vs := range c.Form {
			if k == "token" {
				continue
			}
			b.WriteString(k + "=" + strings.Join(vs, ",") + "\n")
		}
	}
	return b.String()
}
