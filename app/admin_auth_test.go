package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rekeyhq/rekey/auth"
	"github.com/rekeyhq/rekey/config"
	"github.com/rekeyhq/rekey/rotator"
)

const testBootstrap = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

// authEnv is a daemon built from a configuration whose key "api" needs two
// approvers to start, with its admin and public handlers served.
type authEnv struct {
	t      *testing.T
	d      *Daemon
	admin  *httptest.Server
	public *httptest.Server
}

func newAuthEnv(t *testing.T, extra string) *authEnv {
	t.Helper()
	return newAuthEnvWith(t, extra, nil)
}

// newAuthEnvWith is newAuthEnv with edit applied to the parsed
// configuration before the daemon is built.
func newAuthEnvWith(t *testing.T, extra string, edit func(*config.Config)) *authEnv {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "admin-token"), []byte(testBootstrap), 0o600); err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf(`
daemon: {listen: "127.0.0.1:0", admin_listen: "127.0.0.1:0", admin_token_file: %[1]s/admin-token, poll_interval: 20ms, retry_base: 50ms, retry_max: 200ms}
store: {type: sqlite, path: %[1]s/rekey.db}
issuers: [{name: demo, type: random, ledger: %[1]s/ledger.json}]
sinks: [{name: files, type: file, dir: %[1]s/secrets}]
keys:
  - name: api
    issuer: demo
    owners: [alice@example.com]
    sinks: [{sink: files}]
    approval: {gates: [start], approvers: [alice@example.com, bob@example.com, Carol@Example.com], required: 2}
  - {name: db, issuer: demo, sinks: [{sink: files}]}
  - {name: legacy, issuer: demo, sinks: [{sink: files}]}
  - {name: payments-eu, issuer: demo, team: payments, sinks: [{sink: files}]}
%[2]s`, dir, extra)
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(cfg)
	}
	d, err := Build(context.Background(), cfg, slog.New(slog.DiscardHandler), BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = d.Engine.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	for _, k := range []string{"api", "db", "legacy", "payments-eu"} {
		r, err := d.Engine.Trigger(ctx, rotator.TriggerRequest{Key: k, Trigger: rotator.TriggerBootstrap, Actor: rotator.ActorScheduler})
		if err != nil {
			t.Fatal(err)
		}
		waitPhase(t, d, r.ID, rotator.PhaseDone)
	}
	e := &authEnv{t: t, d: d, admin: httptest.NewServer(d.AdminHandler()), public: httptest.NewServer(d.PublicHandler())}
	t.Cleanup(e.admin.Close)
	t.Cleanup(e.public.Close)
	return e
}

// token creates a per-person token as `rekey token create` does.
func (e *authEnv) token(user string, role auth.Role, keys string) string {
	e.t.Helper()
	tok, _, err := auth.CreateToken(context.Background(), TokenStore(e.d.Store), auth.TokenSpec{User: user, Grant: auth.Grant{Role: role, Keys: keys}}, timeNow())
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

type answer struct {
	status int
	body   map[string]any
	header http.Header
}

func (e *authEnv) call(srv *httptest.Server, token, method, path string, body any) answer {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, srv.URL+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, header: resp.Header}
	_ = json.NewDecoder(resp.Body).Decode(&a.body)
	return a
}

func (e *authEnv) api(token, method, path string, body any) answer {
	return e.call(e.admin, token, method, path, body)
}

func (e *authEnv) approvals(id string) []rotator.Approval {
	e.t.Helper()
	as, err := e.d.Store.Approvals(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return as
}

// The attacks of issue 11, replayed against the admin API: each is refused
// and changes nothing.
func TestAdminAPIAttacksRefused(t *testing.T) {
	e := newAuthEnv(t, "")
	aliceOp := e.token("alice@example.com", auth.RoleOperator, "")
	aliceApprover := e.token(" Alice@Example.com ", auth.RoleApprover, "") // created with a variant spelling
	bob := e.token("bob@example.com", auth.RoleApprover, "")
	bobAgain := e.token("BOB@example.com", auth.RoleApprover, "")
	operator := e.token("olga@example.com", auth.RoleOperator, "")
	responder := e.token("rita@example.com", auth.RoleResponder, "")

	rot := e.api(aliceOp, "POST", "/v1/keys/api/rotate", map[string]any{"reason": "quarterly"})
	if rot.status != http.StatusCreated {
		t.Fatalf("alice's staged rotation: %d %v", rot.status, rot.body)
	}
	id := rot.body["id"].(string)
	if got, _ := e.d.Store.GetRotation(context.Background(), id); got.Actor != "alice@example.com" {
		t.Fatalf("recorded actor %q, want the principal alice@example.com", got.Actor)
	}

	steps := []struct {
		name        string
		token, path string
		body        any
		want        int
	}{
		// The shared token naming the actor: now the actor is the
		// principal ("admin"), and a body naming anyone else is refused.
		{"bootstrap token approves as Alice@example.com", testBootstrap, "/v1/rotations/" + id + "/approve", map[string]string{"actor": "Alice@example.com"}, 403},
		{"bootstrap token approves as 'alice@example.com '", testBootstrap, "/v1/rotations/" + id + "/approve", map[string]string{"actor": "alice@example.com "}, 403},
		{"bootstrap token approves as bob", testBootstrap, "/v1/rotations/" + id + "/approve", map[string]string{"actor": "bob@example.com"}, 403},
		// The requester, authenticated, under any spelling.
		{"alice approves her own rotation", aliceApprover, "/v1/rotations/" + id + "/approve", nil, 403},
		{"alice approves naming Alice@example.com", aliceApprover, "/v1/rotations/" + id + "/approve", map[string]string{"actor": "Alice@example.com"}, 403},
		{"alice approves naming 'alice@example.com '", aliceApprover, "/v1/rotations/" + id + "/approve", map[string]string{"actor": "alice@example.com "}, 403},
		{"an operator cannot approve", operator, "/v1/rotations/" + id + "/approve", nil, 403},
		// Bob counts once, whatever his token spells.
		{"bob approves", bob, "/v1/rotations/" + id + "/approve", nil, 200},
		{"bob again, as BOB@example.com", bobAgain, "/v1/rotations/" + id + "/approve", nil, 409},
		{"bob again, naming carol", bob, "/v1/rotations/" + id + "/approve", map[string]string{"actor": "carol@example.com"}, 403},
		// Emergency and decommission by a person need the responder role.
		{`{"actor":"nobody","mode":"emergency"}`, operator, "/v1/keys/db/rotate", map[string]string{"actor": "nobody", "mode": "emergency"}, 403},
		{"emergency by an operator", operator, "/v1/keys/db/rotate", map[string]string{"mode": "emergency"}, 403},
		{"exposure trigger by an operator", operator, "/v1/keys/db/rotate", map[string]string{"trigger": "exposure"}, 403},
		{"emergency by an approver", bob, "/v1/keys/db/rotate", map[string]string{"mode": "emergency"}, 403},
		{`{"trigger":"decommission"}` + " by an operator", operator, "/v1/keys/legacy/rotate", map[string]string{"trigger": "decommission"}, 403},
		{"decommission by an approver", bob, "/v1/keys/legacy/rotate", map[string]string{"trigger": "decommission"}, 403},
		{"no credential", "", "/v1/keys/db/rotate", map[string]string{"mode": "emergency"}, 401},
		{"a made-up rk_ token", "rk_" + strings.Repeat("A", 43), "/v1/keys/db/rotate", nil, 401},
	}
	for _, s := range steps {
		if got := e.api(s.token, "POST", s.path, s.body); got.status != s.want {
			t.Errorf("%s: %d %v, want %d", s.name, got.status, got.body, s.want)
		}
	}
	if as := e.approvals(id); len(as) != 1 || as[0].Approver != "bob@example.com" {
		t.Fatalf("approvals %+v, want bob@example.com's alone", as)
	}
	// The rotation's answer names them with the API's lower-case keys.
	got := e.api(bob, "GET", "/v1/rotations/"+id, nil)
	if l, _ := got.body["approvals"].([]any); len(l) != 1 || l[0].(map[string]any)["approver"] != "bob@example.com" || l[0].(map[string]any)["gate"] != "start" {
		t.Fatalf("GET /v1/rotations/%s approvals: %v", id, got.body["approvals"])
	}
	for _, k := range []string{"db", "legacy"} {
		if rots, _ := e.d.Store.ListRotations(context.Background(), rotator.RotationFilter{Key: k, ActiveOnly: true}); len(rots) != 0 {
			t.Fatalf("refused requests started %d rotations of %s", len(rots), k)
		}
	}

	// A second, distinct person (listed as Carol@Example.com) completes
	// the two-person gate.
	carol := e.token("carol@example.com", auth.RoleApprover, "")
	if got := e.api(carol, "POST", "/v1/rotations/"+id+"/approve", nil); got.status != 200 {
		t.Fatalf("carol's approval: %d %v", got.status, got.body)
	}
	if as := e.approvals(id); len(as) != 2 {
		t.Fatalf("approvals %+v, want bob's and carol's", as)
	}

	// What a responder may do, recorded under the responder's identity.
	em := e.api(responder, "POST", "/v1/keys/db/rotate", map[string]string{"mode": "emergency", "reason": "leaked"})
	if em.status != http.StatusCreated || em.body["mode"] != "emergency" {
		t.Fatalf("responder's emergency rotation: %d %v", em.status, em.body)
	}
	if got, _ := e.d.Store.GetRotation(context.Background(), em.body["id"].(string)); got.Actor != "rita@example.com" {
		t.Errorf("emergency recorded as %q", got.Actor)
	}
	if dc := e.api(responder, "POST", "/v1/keys/legacy/rotate", map[string]string{"trigger": "decommission"}); dc.status != http.StatusCreated {
		t.Errorf("responder's decommission: %d %v", dc.status, dc.body)
	}
}

func TestScopedRoles(t *testing.T) {
	e := newAuthEnv(t, "")
	payments := e.token("pat@example.com", auth.RoleOperator, "payments-*")
	if got := e.api(payments, "POST", "/v1/keys/api/rotate", nil); got.status != 403 {
		t.Errorf("operator of payments-* rotated api: %d %v", got.status, got.body)
	}
	if got := e.api(payments, "POST", "/v1/keys/payments-eu/rotate", nil); got.status != 201 {
		t.Errorf("operator of payments-* on payments-eu: %d %v", got.status, got.body)
	}
	keys := e.api(payments, "GET", "/v1/keys", nil)
	if l, _ := keys.body["keys"].([]any); keys.status != 200 || len(l) != 1 {
		t.Errorf("a scoped principal lists %v", keys.body)
	}
	if got := e.api(payments, "GET", "/v1/tokens", nil); got.status != 403 {
		t.Errorf("a scoped operator lists tokens: %d", got.status)
	}
	who := e.api(payments, "GET", "/v1/whoami", nil)
	if who.status != 200 || who.body["id"] != "pat@example.com" {
		t.Errorf("whoami: %d %v", who.status, who.body)
	}
}

func TestTokensThroughTheAdminAPI(t *testing.T) {
	e := newAuthEnv(t, "")
	created := e.api(testBootstrap, "POST", "/v1/tokens", map[string]string{"user": "Dana@Example.com", "role": "viewer", "expires": "30d"})
	if created.status != 201 {
		t.Fatalf("create: %d %v", created.status, created.body)
	}
	tok := created.body["token"].(string)
	if !strings.HasPrefix(tok, "rk_") {
		t.Fatalf("token %q", tok)
	}
	details := created.body["details"].(map[string]any)
	if details["user"] != "dana@example.com" || details["expires_at"] == "" {
		t.Errorf("details %v", details)
	}
	var hash string
	if err := sqlDB(e.d).QueryRow(`SELECT hash FROM api_tokens WHERE id = ?`, details["id"]).Scan(&hash); err != nil || hash != auth.HashToken(tok) {
		t.Fatalf("stored %q (%v), want only the hash", hash, err)
	}
	if got := e.api(tok, "GET", "/v1/rotations", nil); got.status != 200 {
		t.Errorf("viewer reads: %d", got.status)
	}
	if got := e.api(tok, "POST", "/v1/keys/db/rotate", nil); got.status != 403 {
		t.Errorf("viewer rotates: %d", got.status)
	}
	if got := e.api(tok, "POST", "/v1/tokens", map[string]string{"user": "x", "role": "admin"}); got.status != 403 {
		t.Errorf("viewer mints a token: %d", got.status)
	}
	list := e.api(testBootstrap, "GET", "/v1/tokens", nil)
	if b, _ := json.Marshal(list.body); list.status != 200 || strings.Contains(string(b), hash) || strings.Contains(string(b), tok) {
		t.Errorf("list: %d %s", list.status, b)
	}
	if got := e.api(testBootstrap, "POST", "/v1/tokens/"+details["id"].(string)+"/revoke", nil); got.status != 200 {
		t.Fatalf("revoke: %d %v", got.status, got.body)
	}
	if got := e.api(tok, "GET", "/v1/rotations", nil); got.status != 401 {
		t.Errorf("revoked token: %d", got.status)
	}
	if got := e.api(testBootstrap, "POST", "/v1/tokens", map[string]string{"user": "x", "role": "root"}); got.status != 400 {
		t.Errorf("unknown role: %d", got.status)
	}
}

func TestListenersAreSeparate(t *testing.T) {
	e := newAuthEnv(t, "")
	for _, path := range []string{"/v1/keys", "/v1/rotations", "/metrics", "/v1/tokens"} {
		if got := e.call(e.public, testBootstrap, "GET", path, nil); got.status != 404 {
			t.Errorf("public listener serves %s: %d", path, got.status)
		}
	}
	for _, srv := range []*httptest.Server{e.public, e.admin} {
		if got := e.call(srv, "", "GET", "/healthz", nil); got.status != 200 {
			t.Errorf("/healthz: %d", got.status)
		}
	}
	if got := e.call(e.admin, "", "GET", "/metrics", nil); got.status != 200 {
		t.Errorf("/metrics without a metrics token: %d", got.status)
	}
}

func TestFailedAuthenticationsThrottled(t *testing.T) {
	e := newAuthEnv(t, "")
	var last answer
	for range 12 {
		last = e.api("wrong", "GET", "/v1/keys", nil)
	}
	if last.status != http.StatusTooManyRequests || last.header.Get("Retry-After") == "" {
		t.Fatalf("after 12 failures: %d, Retry-After %q", last.status, last.header.Get("Retry-After"))
	}
	// Even the right credential waits: the check comes first.
	if got := e.api(testBootstrap, "GET", "/v1/keys", nil); got.status != http.StatusTooManyRequests {
		t.Errorf("valid credential from a throttled address: %d", got.status)
	}
}

func TestMetricsToken(t *testing.T) {
	mt := "0c3f5b8e9a7d2c1b4e6f8a0d2c4b6e8f1a3c5e7d9b0f2a4c6e8d0b2f4a6c8e0d"
	e := newAuthEnv(t, "")
	e.d.metricsToken = mt
	e.admin.Close()
	e.admin = httptest.NewServer(e.d.AdminHandler())
	if got := e.call(e.admin, "", "GET", "/metrics", nil); got.status != 401 {
		t.Errorf("/metrics without the token: %d", got.status)
	}
	if got := e.call(e.admin, mt, "GET", "/metrics", nil); got.status != 200 {
		t.Errorf("/metrics with the token: %d", got.status)
	}
}

func TestWeakSharedTokensRefused(t *testing.T) {
	for name, tc := range map[string]struct{ field, token, path string }{
		"admin token":   {"admin_token_file", "e2e-admin-token-0123456789", "daemon.admin_token_file"},
		"one character": {"admin_token_file", "x", "daemon.admin_token_file"},
		"metrics token": {"metrics_token_file", "metrics", "daemon.metrics_token_file"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "tok"), []byte(tc.token), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Parse([]byte(fmt.Sprintf(`
daemon: {%s: %s/tok}
store: {type: sqlite, path: %s/rekey.db}
`, tc.field, dir, dir)))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Build(context.Background(), cfg, slog.New(slog.DiscardHandler), BuildOptions{})
			var ce config.Errors
			if !errors.As(err, &ce) || len(ce) != 1 || ce[0].Path != tc.path || !strings.Contains(ce[0].Msg, "too weak") {
				t.Fatalf("Build: %v, want a config error at %s", err, tc.path)
			}
			// rekey run stops before it listens or creates a store; doctor
			// names the field, not the store.
			cfgPath := filepath.Join(dir, "rekey.yaml")
			if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf("daemon: {listen: 127.0.0.1:0, admin_listen: 127.0.0.1:0, %s: %s/tok}\nstore: {type: sqlite, path: %s/run.db}\n", tc.field, dir, dir)), 0o600); err != nil {
				t.Fatal(err)
			}
			var logs syncBuffer
			err = Run(context.Background(), Options{ConfigPath: cfgPath, Logs: &logs})
			if !errors.As(err, &ce) || ce[0].Path != tc.path {
				t.Fatalf("Run: %v, want a config error at %s", err, tc.path)
			}
			if _, serr := os.Stat(filepath.Join(dir, "run.db")); serr == nil || strings.Contains(logs.String(), "listening") {
				t.Errorf("Run created the store (%v) or listened before refusing the token:\n%s", serr, logs.String())
			}
			rep := Doctor(context.Background(), cfgPath, slog.New(slog.DiscardHandler))
			found := false
			for _, r := range rep.Results {
				if r.Kind == "config" && r.Name == tc.path && !r.OK && strings.Contains(r.Detail, "too weak") {
					found = true
				}
				if r.Kind == "store" && !r.OK {
					t.Errorf("doctor blames the store: %+v", r)
				}
			}
			if !found {
				t.Errorf("doctor does not name %s: %+v", tc.path, rep.Results)
			}
		})
	}
}
