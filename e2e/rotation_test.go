package e2e

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

type auditEvent struct {
	Seq        int64             `json:"seq"`
	RotationID string            `json:"rotation_id"`
	Action     string            `json:"action"`
	Actor      string            `json:"actor"`
	Detail     map[string]string `json:"detail"`
}

// A key past max_age rotates through every staged phase into the file
// sink, the old credential is revoked at the issuer, the audit trail holds
// every transition and verifies, and tampering with one row is detected.
func TestKeyPastMaxAgeRotatesEndToEnd(t *testing.T) {
	t.Parallel()
	w := newWorld(t, params{MaxAge: "3s", Quiet: "300ms", Watch: "300ms", Sched: "@every 1s"})
	d := w.start()
	// The scheduler bootstraps generation 1, then rotates it for age.
	var aged rotationView
	deadline := patient(30 * time.Second)
	for time.Now().Before(deadline) && aged.ID == "" {
		var list struct {
			Rotations []rotationView `json:"rotations"`
		}
		w.api("GET", "/v1/rotations?key=api", nil, &list)
		for _, r := range list.Rotations {
			if r.Trigger == "age" {
				aged = r
			}
		}
		w.collectSecrets()
		time.Sleep(100 * time.Millisecond)
	}
	if aged.ID == "" {
		t.Fatal("no age rotation was started")
	}
	r := w.waitRotation(aged.ID, 30*time.Second)
	if r.Phase != "done" {
		t.Fatalf("age rotation ended %s: %s %s", r.Phase, r.Outcome, r.LastError)
	}
	w.collectSecrets()
	doc := w.sink("api")
	if doc.ManagedBy != "rekey" || doc.Current == nil || doc.Current.Generation != r.NewGeneration || doc.Pending != nil || doc.Previous != nil {
		t.Fatalf("sink after rotation: %+v (want generation %d current only)", doc, r.NewGeneration)
	}
	live := 0
	for _, c := range w.ledger() {
		if c.RevokedAt == "" {
			live++
			if c.Fingerprint != doc.Current.Fingerprint {
				t.Fatalf("live credential %s is not the delivered one", c.Name)
			}
		}
	}
	if live != 1 {
		t.Fatalf("%d live credentials at the issuer, want 1", live)
	}
	out, code := w.cliStdout("", "audit", "--rotation", r.ID, "-o", "json")
	if code != 0 {
		t.Fatalf("audit: exit %d: %s", code, out)
	}
	var audit struct {
		Events []auditEvent `json:"events"`
	}
	if err := json.Unmarshal([]byte(out), &audit); err != nil {
		t.Fatalf("audit json: %v\n%s", err, out)
	}
	var actions []string
	for _, e := range audit.Events {
		actions = append(actions, e.Action)
	}
	for _, want := range []string{"rotation.created", "started", "mint.intent", "minted", "staged", "cut_over", "drained", "revoked", "watched", "finished"} {
		if !slices.Contains(actions, want) {
			t.Fatalf("audit trail lacks %q: %v", want, actions)
		}
	}
	if out, code := w.cli("", "audit", "verify"); code != 0 || !strings.Contains(out, "intact") {
		t.Fatalf("audit verify: exit %d: %s", code, out)
	}
	d.stop()
	w.scanForSecrets()

	// Tamper with one audit row: verification must fail with exit code 5.
	db, err := sql.Open("sqlite", filepath.Join(w.dir, "rekey.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE audit_events SET actor = 'mallory' WHERE seq = 3`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	out, code = w.cli("", "audit", "verify")
	if code != 5 || !strings.Contains(out, "event 3") {
		t.Fatalf("tampered audit: exit %d: %s", code, out)
	}
}

// Invariant 6 through the admin API: concurrent triggers, one rotation.
func TestConcurrentTriggersThroughAPI(t *testing.T) {
	t.Parallel()
	w := newWorld(t, params{Quiet: "2s"})
	w.start()
	w.bootstrap("api")
	codes := make(chan int, 30)
	for range 30 {
		go func() {
			codes <- w.api("POST", "/v1/keys/api/rotate", map[string]string{}, nil)
		}()
	}
	counts := map[int]int{}
	for range 30 {
		counts[<-codes]++
	}
	if counts[201] != 1 || counts[409] != 29 {
		t.Fatalf("status counts %v, want one 201 and 29 409", counts)
	}
}

// bootstrap waits until the daemon's scheduler has minted generation 1 of
// key (bootstrap is on by default).
func (w *world) bootstrap(key string) {
	w.t.Helper()
	deadline := patient(20 * time.Second)
	for time.Now().Before(deadline) {
		var keys struct {
			Keys []struct {
				Name       string `json:"name"`
				Generation int    `json:"generation"`
				State      string `json:"state"`
			} `json:"keys"`
		}
		w.api("GET", "/v1/keys", nil, &keys)
		for _, k := range keys.Keys {
			if k.Name == key && k.Generation >= 1 && k.State == "current" {
				w.collectSecrets()
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	w.t.Fatalf("key %s was not bootstrapped; daemon log:\n%s", key, w.logTail())
}

// Bad admin API input gets a 4xx with a message and changes nothing.
func TestAdminAPIRejectsBadInput(t *testing.T) {
	t.Parallel()
	w := newWorld(t, params{Approval: true})
	w.start()
	w.bootstrap("api")
	var before struct {
		Events []auditEvent `json:"events"`
	}
	w.api("GET", "/v1/audit", nil, &before)
	for name, tc := range map[string]struct {
		method, path string
		body         any
		token        string
		want         int
	}{
		"no token":             {method: "POST", path: "/v1/keys/api/rotate", body: map[string]string{}, token: "-", want: 401},
		"wrong token":          {method: "POST", path: "/v1/keys/api/rotate", body: map[string]string{}, token: "nope", want: 401},
		"unknown key":          {method: "POST", path: "/v1/keys/nope/rotate", body: map[string]string{}, want: 404},
		"actor not the caller": {method: "POST", path: "/v1/keys/api/rotate", body: map[string]string{"actor": "x"}, want: 403},
		"bad mode":             {method: "POST", path: "/v1/keys/api/rotate", body: map[string]string{"mode": "yolo"}, want: 400},
		"unknown field":        {method: "POST", path: "/v1/keys/api/rotate", body: map[string]string{"force": "yes"}, want: 400},
		"malformed json":       {method: "POST", path: "/v1/keys/api/rotate", body: json.RawMessage(`{"actor":`), want: 400},
		"approve unknown":      {method: "POST", path: "/v1/rotations/rot_nope/approve", body: map[string]string{}, want: 404},
		"approve as another":   {method: "POST", path: "/v1/rotations/rot_nope/approve", body: map[string]string{"actor": "bob"}, want: 403},
		"bad limit":            {method: "GET", path: "/v1/rotations?limit=-3", want: 400},
		"bad audit cursor":     {method: "GET", path: "/v1/audit?after=x", want: 400},
	} {
		t.Run(name, func(t *testing.T) {
			got := w.rawAPI(tc.method, tc.path, tc.body, tc.token)
			if got.status != tc.want || !strings.Contains(got.body, `"error"`) {
				t.Fatalf("status %d body %s, want %d with an error message", got.status, got.body, tc.want)
			}
		})
	}
	var list struct {
		Rotations []rotationView `json:"rotations"`
	}
	w.api("GET", "/v1/rotations?key=api&active=true", nil, &list)
	if len(list.Rotations) != 0 {
		t.Fatalf("a rejected request started a rotation: %+v", list.Rotations)
	}
	var after struct {
		Events []auditEvent `json:"events"`
	}
	w.api("GET", "/v1/audit", nil, &after)
	if len(after.Events) != len(before.Events) {
		t.Fatalf("rejected requests wrote %d audit events", len(after.Events)-len(before.Events))
	}
	// A rotation needing approval: the requester cannot approve it (not
	// even as a case variant), an outsider cannot, a listed approver can.
	// Each person holds a token minted by `rekey token create`.
	tok := func(user, role string) string {
		out, code := w.cliStdout("", "token", "create", "--user", user, "--role", role)
		if code != 0 {
			t.Fatalf("token create --user %s: exit %d", user, code)
		}
		return strings.TrimSpace(out)
	}
	bobOp, bob, bobCase, mallory, carol := tok("bob", "operator"), tok("bob", "approver"), tok("Bob ", "approver"), tok("mallory", "approver"), tok("carol", "approver")
	// Who can act is part of the trail: each token's creation is audited,
	// by the break-glass actor, without the token.
	var trail struct {
		Events []auditEvent `json:"events"`
	}
	w.api("GET", "/v1/audit", nil, &trail)
	created := 0
	for _, e := range trail.Events {
		if e.Action == "token.created" {
			created++
			if !strings.HasPrefix(e.Actor, "break-glass:") || e.Detail["role"] == "" {
				t.Fatalf("token audit event %+v", e)
			}
		}
	}
	if created != 5 {
		t.Fatalf("%d token.created events, want 5", created)
	}
	if raw, _ := json.Marshal(trail.Events); strings.Contains(string(raw), strings.TrimPrefix(bob, "rk_")) {
		t.Fatal("the audit trail holds a token")
	}
	got := w.rawAPI("POST", "/v1/keys/api/rotate", map[string]string{}, bobOp)
	var r rotationView
	_ = json.Unmarshal([]byte(got.body), &r)
	if got.status != 201 {
		t.Fatalf("rotate: %d %s", got.status, got.body)
	}
	for who, token := range map[string]string{"self approval": bob, "self approval as 'Bob '": bobCase, "outsider approval": mallory} {
		if got := w.rawAPI("POST", "/v1/rotations/"+r.ID+"/approve", map[string]string{}, token); got.status != 403 {
			t.Fatalf("%s: %d %s", who, got.status, got.body)
		}
	}
	if got := w.rawAPI("POST", "/v1/rotations/"+r.ID+"/approve", map[string]string{}, carol); got.status != 200 {
		t.Fatalf("approval: %d %s", got.status, got.body)
	}
	if done := w.waitRotation(r.ID, 20*time.Second); done.Phase != "done" {
		t.Fatalf("approved rotation ended %s", done.Phase)
	}
	w.scanForSecrets()
}

type rawResp struct {
	status int
	body   string
}

func (w *world) rawAPI(method, path string, body any, token string) rawResp {
	w.t.Helper()
	var rd *strings.Reader
	switch b := body.(type) {
	case nil:
		rd = strings.NewReader("")
	case json.RawMessage:
		rd = strings.NewReader(string(b))
	default:
		j, _ := json.Marshal(b)
		rd = strings.NewReader(string(j))
	}
	req, _ := httpNewRequest(method, "http://"+w.AdminAddr()+path, rd)
	switch token {
	case "":
		req.Header.Set("Authorization", "Bearer "+adminToken)
	case "-":
	default:
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpDo(req)
	if err != nil {
		w.t.Fatal(err)
	}
	w.record([]byte(resp.body))
	return resp
}

// `rekey validate` lists every problem with its YAML path and exits 2.
func TestValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	w := newWorld(t, params{})
	broken := strings.NewReplacer(
		"    issuer: demo\n", "    issuer: dem0\n",
		"      - sink: files\n", "      - sink: filez\n",
		"  retry_base: 100ms\n", "  retry_base: 100ms\n  colour: blue\n",
		"    max_age: 90d\n", "    max_age: ninety\n",
	).Replace(readFile(t, w.cfg))
	writeFile(t, w.cfg, broken)
	out, code := w.cli("", "validate")
	if code != 2 {
		t.Fatalf("exit %d: %s", code, out)
	}
	for _, want := range []string{
		`keys[0].issuer: unknown issuer "dem0" (known: demo)`,
		`keys[0].sinks[0].sink: unknown sink "filez" (known: files)`,
		`daemon.colour: unknown field`,
		`defaults.policies.max_age:`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("validate output lacks %q:\n%s", want, out)
		}
	}
	if out, code := w.cli("", "rotate", "api"); code != 2 {
		t.Fatalf("a command on a broken config must exit 2, got %d: %s", code, out)
	}
	_ = fmt.Sprint()
}

// logTail is the end of the newest daemon log, for failure messages.
func (w *world) logTail() string {
	if len(w.logs) == 0 {
		return ""
	}
	b, _ := os.ReadFile(w.logs[len(w.logs)-1])
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
