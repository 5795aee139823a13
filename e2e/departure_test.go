package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/internal/stdwebhooks"
)

const departureSecret = "e2e-departure-signing-secret-0123456789"

const departureTemplate = `
daemon:
  listen: 127.0.0.1:0
  address_file: {{.Dir}}/rekey.addr
  admin_listen: 127.0.0.1:0
  admin_address_file: {{.Dir}}/rekey.admin.addr
  admin_token_file: {{.Dir}}/admin-token
  poll_interval: 100ms
  retry_base: 100ms
  retry_max: 1s
store: {type: sqlite, path: {{.Dir}}/rekey.db}
issuers: [{name: demo, type: random, ledger: {{.Dir}}/ledger.json}]
sinks: [{name: files, type: file, dir: {{.Dir}}/secrets}]
notifiers: [{name: log, type: log}]
traffic: [{name: fixed, type: fixed}]
webhooks: [{name: hr, type: departure, secret_file: {{.Dir}}/departure-secret}]
keys:
  - name: g
    issuer: demo
    owners: [alice@example.com, carol@example.com]
    sinks: [{sink: files}]
    approval: {gates: [revoke], expire_after: 1h}
    drain: {source: fixed, quiet_period: 0s, max_wait: 1h, poll_interval: 100ms}
`

// postDeparture posts a signed departure of email to the hr webhook.
func (w *world) postDeparture(id, email string) (int, map[string]any) {
	w.t.Helper()
	body, _ := json.Marshal(map[string]string{"email": email})
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	sig, err := stdwebhooks.Sign(departureSecret, id, ts, body)
	if err != nil {
		w.t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", "http://"+w.Addr()+"/v1/events/departure", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", ts)
	req.Header.Set("webhook-signature", sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// rotationNow reads a rotation once.
func (w *world) rotationNow(id string) rotationView {
	w.t.Helper()
	var got struct {
		Rotation rotationView `json:"rotation"`
	}
	w.api("GET", "/v1/rotations/"+id, nil, &got)
	return got.Rotation
}

// waitHeld polls until rotation id is held for a revoke approval.
func (w *world) waitHeld(id string) {
	w.t.Helper()
	waitUntil(w.t, "rotation "+id+" held for its revoke approval", func() bool {
		r := w.rotationNow(id)
		return r.Phase == "revoking" && r.Hold == "approval"
	})
}

// TRYOUT2 finding 2, with the binary: carol, reported as having left
// while a rotation of her key g waits for its revoke approval (its new
// generation already in the sink), can no longer approve it (nor
// authenticate: exit 3, her token revoked), and once that rotation ends
// the departure rotates g again, to a generation minted after she left.
// On the code before, the departure answered that rotation as its own,
// carol's approval completed it, and nothing rotated g afterwards.
func TestDepartedPersonLosesAccessAndTheirKeyRotatesPastThem(t *testing.T) {
	t.Parallel()
	w := newWorldFrom(t, departureTemplate, func(w *world) any { return w })
	writeFile(t, w.dir+"/departure-secret", departureSecret)
	d := w.start()
	defer d.stop()
	w.bootstrap("g")
	alice, carol, bob := w.token("alice@example.com", "operator"), w.token("carol@example.com", "approver"), w.token("bob@example.com", "approver")
	out := w.client(alice).must("rotate", "g", "-o", "json")
	var rot rotationView
	if err := json.Unmarshal([]byte(out), &rot); err != nil || rot.ID == "" {
		t.Fatalf("rotate: %q %v", out, err)
	}
	w.waitHeld(rot.ID)
	inflight := w.rotationNow(rot.ID).NewGeneration

	code, res := w.postDeparture("hr-1", "carol@example.com")
	if code != http.StatusAccepted || !slices.Equal(asStrings(res["waiting"]), []string{"g"}) || len(asStrings(res["rotations"])) != 0 {
		t.Fatalf("departure: %d %v", code, res)
	}
	_, errOut, exit := w.client(carol).rekey("", "approve", rot.ID)
	if exit != 3 || !strings.Contains(errOut, "carol@example.com left on") {
		t.Fatalf("carol approves after she left: exit %d %s", exit, errOut)
	}
	if _, errOut, exit := w.client(carol).rekey("", "whoami"); exit != 3 {
		t.Fatalf("carol's whoami after she left: exit %d %s", exit, errOut)
	}
	var toks struct {
		Tokens []struct {
			User      string `json:"user"`
			RevokedAt string `json:"revoked_at"`
		} `json:"tokens"`
	}
	w.api("GET", "/v1/tokens", nil, &toks)
	for _, tk := range toks.Tokens {
		if (tk.User == "carol@example.com") == (tk.RevokedAt == "") {
			t.Fatalf("tokens after carol left: %+v", toks.Tokens)
		}
	}
	w.client(bob).must("approve", rot.ID)
	if r := w.waitRotation(rot.ID, 20*time.Second); r.Phase != "done" {
		t.Fatalf("rotation in flight ended %s", r.Phase)
	}
	var follow string
	waitUntil(t, "a departure rotation of g", func() bool {
		var list struct {
			Rotations []rotationView `json:"rotations"`
		}
		w.api("GET", "/v1/rotations?key=g", nil, &list)
		for _, r := range list.Rotations {
			if r.Trigger == "departure" {
				follow = r.ID
			}
		}
		return follow != ""
	})
	w.waitHeld(follow)
	w.client(bob).must("approve", follow)
	r := w.waitRotation(follow, 20*time.Second)
	if r.Phase != "done" || r.NewGeneration <= inflight {
		t.Fatalf("departure rotation ended %s with generation %d (the one in flight minted %d)", r.Phase, r.NewGeneration, inflight)
	}
}

func asStrings(v any) []string {
	l, _ := v.([]any)
	out := []string{}
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
