package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/internal/testenv/kubeadapt"
)

// The three real issuers (http, manual, awsiam) end to end through the
// rekey binary: this file holds the configuration, the helpers shared by
// issuers_*_test.go, and the http issuer's tests against the Kubeadapt-style
// server, configured from the shipped examples/kubeadapt-issuer.yaml.

// issuerCfg is a configuration with one issuer (Issuer, a YAML list item
// inserted as data so that the issuer's own templates are not executed
// here) and one key delivered to the file sink. Drain and watch take no
// time: these tests are about the issuer.
const issuerCfg = `
daemon:
  listen: {{.Addr}}
  admin_token_file: {{.Dir}}/admin-token
  schedule: "@every 1h"
  poll_interval: 100ms
  retry_base: 100ms
  retry_max: 1s
  log_level: debug
store:
  type: sqlite
  path: {{.Dir}}/rekey.db
issuers:
{{.Issuer}}
sinks:
  - name: files
    type: file
    dir: {{.Dir}}/secrets
notifiers:
  - name: log
    type: log
  - name: hook
    type: webhook
    url: {{.Hook}}
    secret_file: {{.Dir}}/webhook-secret
    max_attempts: 3
traffic:
  - name: fixed
    type: fixed
defaults:
  verify: true
  drain:
    source: fixed
    quiet_period: 0s
    max_wait: 1h
    poll_interval: 100ms
  watch:
    period: 0s
    poll_interval: 100ms
keys:
  - name: {{.Key}}
    issuer: {{.IssuerName}}
    owners: [alice@example.com]
    params:
      scopes: [clusters:read]
    sinks:
      - sink: files
`

type issuerParams struct {
	Dir, Addr, Hook string
	Key, IssuerName string
	Issuer          string
}

// newIssuerWorld makes a world for key bound to the issuer named name,
// whose YAML list item issuer renders from the world's directory.
func newIssuerWorld(t *testing.T, key, name string, issuer func(dir string) string) *issuerWorld {
	t.Helper()
	return &issuerWorld{newWorldFrom(t, issuerCfg, func(w *world) any {
		return issuerParams{Dir: w.Dir(), Addr: w.Addr(), Hook: w.HookURL(), Key: key, IssuerName: name, Issuer: issuer(w.Dir())}
	})}
}

// issuerWorld is a world with the helpers of the issuer tests.
type issuerWorld struct{ *world }

// exampleHTTPIssuer is the shipped example issuer
// (examples/kubeadapt-issuer.yaml) pointed at a local server, with the admin token read from tokenFile and
// the verify probe relaxed to "anything but 401". Each edit must apply
// exactly once, so that a change to the example fails here instead of
// silently testing something else.
func exampleHTTPIssuer(t *testing.T, baseURL, tokenFile string) string {
	t.Helper()
	b, err := os.ReadFile("../examples/kubeadapt-issuer.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, item, ok := strings.Cut(string(b), "\nissuers:\n")
	if !ok {
		t.Fatal("examples/kubeadapt-issuer.yaml: no issuers: list")
	}
	for _, r := range [][2]string{
		{"base_url: https://api.kubeadapt.io", "base_url: " + baseURL},
		{"      token_env: KA_ADMIN_TOKEN", "      token_file: " + tokenFile},
		{"      expect: [200] ", "      not: [401] "},
	} {
		if n := strings.Count(item, r[0]); n != 1 {
			t.Fatalf("examples/kubeadapt-issuer.yaml: %q occurs %d times, want 1", r[0], n)
		}
		item = strings.Replace(item, r[0], r[1], 1)
	}
	return item
}

// startIssuerKubeadapt starts the Kubeadapt-style server in-process with a
// fresh admin token, registered as a secret for the scan. It fails the test
// when the server cannot listen.
func startIssuerKubeadapt(t *testing.T) *kubeadapt.Server {
	t.Helper()
	tok := "ka-admin-" + issuerRandomHex(t, 16)
	addSecret(tok)
	srv := kubeadapt.New(kubeadapt.Options{AdminToken: tok})
	if err := srv.Start("127.0.0.1:0"); err != nil {
		t.Fatalf("kubeadapt server: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

func issuerRandomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// kaTokenFile holds the Kubeadapt admin token in a world's directory.
const kaTokenFile = "ka-admin-token"

// newHTTPIssuerWorld starts a Kubeadapt-style server and a world whose key
// uses the example http issuer against it.
func newHTTPIssuerWorld(t *testing.T, key string) (*issuerWorld, *kubeadapt.Server) {
	t.Helper()
	srv := startIssuerKubeadapt(t)
	w := newIssuerWorld(t, key, "kubeadapt", func(dir string) string {
		return exampleHTTPIssuer(t, srv.URL(), filepath.Join(dir, kaTokenFile))
	})
	writeFile(t, filepath.Join(w.Dir(), kaTokenFile), srv.AdminToken())
	return w, srv
}

// kaDataStatus calls the data API (GET /v1/clusters) with secret.
func kaDataStatus(t *testing.T, srv *kubeadapt.Server, secret string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL()+"/v1/clusters", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// kaKeysNamed returns the server's keys named exactly name, or starting with
// name when prefix.
func kaKeysNamed(srv *kubeadapt.Server, name string, prefix bool) (active, revoked []kubeadapt.KeyInfo) {
	for _, k := range srv.Keys() {
		if k.Name != name && !(prefix && strings.HasPrefix(k.Name, name)) {
			continue
		}
		if k.Status == kubeadapt.StatusActive {
			active = append(active, k)
		} else {
			revoked = append(revoked, k)
		}
	}
	return active, revoked
}

// issuerRotation is the admin API's view of a rotation, with the fields
// the harness's rotationView leaves out.
type issuerRotation struct {
	rotationView
	HoldDetail  string `json:"hold_detail"`
	Attempts    int    `json:"attempts"`
	ErrorReason string `json:"error_reason"`
	UpdatedAt   string `json:"updated_at"`
}

func (w *issuerWorld) rotation(id string) issuerRotation {
	w.t.Helper()
	var got struct {
		Rotation issuerRotation `json:"rotation"`
	}
	if code := w.api("GET", "/v1/rotations/"+id, nil, &got); code != 200 {
		w.t.Fatalf("GET rotation %s: %d", id, code)
	}
	return got.Rotation
}

// waitFor polls the rotation until ok accepts it.
func (w *issuerWorld) waitFor(id, what string, within time.Duration, ok func(r issuerRotation) bool) issuerRotation {
	w.t.Helper()
	deadline := time.Now().Add(within)
	for {
		r := w.rotation(id)
		if ok(r) {
			return r
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("rotation %s: not %s within %s: %+v", id, what, within, r)
		}
		w.collectSecrets()
		time.Sleep(50 * time.Millisecond)
	}
}

// activeRotation waits for the key's active rotation (e.g. the automatic
// bootstrap) and returns its id.
func (w *issuerWorld) activeRotation(key string, within time.Duration) string {
	w.t.Helper()
	deadline := time.Now().Add(within)
	for {
		var list struct {
			Rotations []rotationView `json:"rotations"`
		}
		w.api("GET", "/v1/rotations?key="+key+"&active=true", nil, &list)
		if len(list.Rotations) > 0 {
			return list.Rotations[0].ID
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("no active rotation of %s within %s", key, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rotate starts a staged rotation with the CLI and returns its id.
func (w *issuerWorld) rotate(key string) string {
	w.t.Helper()
	out, code := w.cliStdout("", "rotate", key, "--as", "ops", "--reason", "issuer e2e", "-o", "json")
	if code != 0 {
		w.t.Fatalf("rotate %s: exit %d: %s", key, code, out)
	}
	var r rotationView
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		w.t.Fatalf("rotate %s: %v: %s", key, err, out)
	}
	return r.ID
}

// auditOf returns the audit events of a rotation.
func (w *issuerWorld) auditOf(id string) []auditEvent {
	w.t.Helper()
	var a struct {
		Events []auditEvent `json:"events"`
	}
	if code := w.api("GET", "/v1/audit?rotation="+id, nil, &a); code != 200 {
		w.t.Fatalf("audit of %s: %d", id, code)
	}
	return a.Events
}

func auditActions(evs []auditEvent) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Action)
	}
	return out
}

// keyIssuerID returns the issuer id and generation of the key's current
// credential, as rekey records them.
func (w *issuerWorld) keyIssuerID(key string) (string, int) {
	w.t.Helper()
	var keys struct {
		Keys []struct {
			Name       string `json:"name"`
			Generation int    `json:"generation"`
			IssuerID   string `json:"issuer_id"`
		} `json:"keys"`
	}
	w.api("GET", "/v1/keys", nil, &keys)
	for _, k := range keys.Keys {
		if k.Name == key {
			return k.IssuerID, k.Generation
		}
	}
	w.t.Fatalf("key %s not listed", key)
	return "", 0
}

// notified returns the messages of the webhook notifications received.
func (w *issuerWorld) notified() []string {
	bodies, _ := w.notifications()
	var out []string
	for _, b := range bodies {
		var n struct {
			Kind    string `json:"kind"`
			Message string `json:"message"`
		}
		if json.Unmarshal(b, &n) == nil {
			out = append(out, n.Kind+": "+n.Message)
		}
	}
	return out
}

// waitNotified waits until a webhook notification contains every want.
func (w *issuerWorld) waitNotified(within time.Duration, want ...string) string {
	w.t.Helper()
	deadline := time.Now().Add(within)
	for {
		for _, m := range w.notified() {
			if hasAll(m, want...) {
				return m
			}
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("no notification containing %q within %s; got:\n%s", want, within, strings.Join(w.notified(), "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func hasAll(s string, subs ...string) bool {
	return !slices.ContainsFunc(subs, func(sub string) bool { return !strings.Contains(s, sub) })
}

// A staged rotation through the example http issuer: bootstrap mints ka-v1
// at start, `rekey rotate` mints ka-v2 with the same scopes, verifies it
// against the data API, delivers it, and revokes ka-v1 at the server. The
// new key works, the old one gets 401 on the very next request, and the
// server holds exactly one active key of that name.
func TestHTTPIssuerStagedRotation(t *testing.T) {
	t.Parallel()
	w, srv := newHTTPIssuerWorld(t, "ka")
	d := w.start()
	w.bootstrap("ka")
	old := w.sink("ka").Current
	if old == nil || !kubeadapt.ValidKeyFormat(old.Value) {
		t.Fatalf("bootstrap delivered %+v, want a ka_live_ key", old)
	}
	if got := kaDataStatus(t, srv, old.Value); got != 200 {
		t.Fatalf("bootstrapped key: data API %d, want 200", got)
	}
	oldID, _ := w.keyIssuerID("ka")

	start := time.Now()
	id := w.rotate("ka")
	r := w.waitRotation(id, 15*time.Second)
	if r.Phase != "done" || r.NewGeneration != 2 {
		t.Fatalf("rotation ended %s (generation %d): %s %s", r.Phase, r.NewGeneration, r.Outcome, r.LastError)
	}
	t.Logf("staged rotation through the http issuer: %s", time.Since(start).Round(time.Millisecond))

	doc := w.sink("ka")
	if doc.Current == nil || doc.Current.Generation != 2 || doc.Pending != nil || doc.Previous != nil {
		t.Fatalf("sink after rotation: %+v", doc)
	}
	if doc.Current.Value == old.Value {
		t.Fatal("the sink still holds the old key")
	}
	if got := kaDataStatus(t, srv, doc.Current.Value); got != 200 {
		t.Fatalf("new key: data API %d, want 200", got)
	}
	if got := kaDataStatus(t, srv, old.Value); got != 401 {
		t.Fatalf("old key: data API %d, want 401 (revoked)", got)
	}
	active, revoked := kaKeysNamed(srv, "ka-v", true)
	if len(active) != 1 || active[0].Name != "ka-v2" || len(revoked) != 1 || revoked[0].ID != oldID {
		t.Fatalf("server keys: active %+v, revoked %+v; want ka-v2 active and %s revoked", active, revoked, oldID)
	}
	if newID, gen := w.keyIssuerID("ka"); newID != active[0].ID || gen != 2 {
		t.Fatalf("rekey records %s generation %d, the server's live key is %s", newID, gen, active[0].ID)
	}
	if !slices.Equal(active[0].Scopes, []string{"clusters:read"}) {
		t.Fatalf("new key scopes %v, want the key's params", active[0].Scopes)
	}
	acts := auditActions(w.auditOf(id))
	for _, want := range []string{"minted", "staged", "verified", "cut_over", "revoked", "finished"} {
		if !slices.Contains(acts, want) {
			t.Fatalf("audit lacks %q: %v", want, acts)
		}
	}
	d.stop()
	w.scanForSecrets()
}

// Killed right after the issuer minted ka-v2 and before rekey recorded it:
// the restarted daemon finds the orphan by its deterministic name, revokes
// it at the server, mints ka-v2 again and finishes; exactly one key of
// that name stays live, the delivered one.
func TestHTTPIssuerCrashBetweenMintAndRecord(t *testing.T) {
	t.Parallel()
	w, srv := newHTTPIssuerWorld(t, "ka")
	d := w.start()
	w.bootstrap("ka")
	d.stop()
	d = w.start("REKEY_FAILPOINT=minting:after")
	id := w.rotate("ka")
	if !d.waitKilled(t, 15*time.Second) {
		t.Fatal("the daemon was not killed at minting:after")
	}
	if !strings.Contains(readFile(t, d.log), `"failpoint":"minting:after"`) {
		t.Fatal("killed, but not at the failpoint")
	}
	orphans, _ := kaKeysNamed(srv, "ka-v2", false)
	if len(orphans) != 1 {
		t.Fatalf("after the crash the server has %d live ka-v2, want the 1 orphan", len(orphans))
	}
	orphan := orphans[0].ID

	start := time.Now()
	d = w.start()
	r := w.waitRotation(id, 15*time.Second)
	if r.Phase != "done" {
		t.Fatalf("rotation ended %s: %s %s", r.Phase, r.Outcome, r.LastError)
	}
	t.Logf("restart to done, orphan revoked: %s", time.Since(start).Round(time.Millisecond))
	if k, _ := srv.Key(orphan); k.Status != kubeadapt.StatusRevoked {
		t.Fatalf("orphan %s is %s at the server, want revoked", orphan, k.Status)
	}
	active, _ := kaKeysNamed(srv, "ka-v", true)
	doc := w.sink("ka")
	if len(active) != 1 || active[0].Name != "ka-v2" || active[0].ID == orphan {
		t.Fatalf("live keys at the server: %+v, want one ka-v2 that is not the orphan", active)
	}
	if newID, _ := w.keyIssuerID("ka"); newID != active[0].ID {
		t.Fatalf("rekey records %s, the live key is %s", newID, active[0].ID)
	}
	if doc.Current == nil || doc.Pending != nil || doc.Previous != nil || kaDataStatus(t, srv, doc.Current.Value) != 200 {
		t.Fatalf("sink after recovery: %+v", doc)
	}
	var reaped bool
	for _, e := range w.auditOf(id) {
		if e.Action == "orphan.revoked" && e.Detail["issuer_id"] == orphan && e.Detail["name"] == "ka-v2" {
			reaped = true
		}
	}
	if !reaped {
		t.Fatalf("no orphan.revoked audit event for %s: %v", orphan, auditActions(w.auditOf(id)))
	}
	w.waitNotified(5*time.Second, "orphan", "ka-v2", orphan)
	d.stop()
	w.scanForSecrets()
}

// 503 and 429 from the admin API are retried with backoff that honours
// Retry-After (the server sends 1 s): the rotation shows its attempts and
// the last error while it waits, then completes.
func TestHTTPIssuerRetriesUnavailableAdminAPI(t *testing.T) {
	t.Parallel()
	w, srv := newHTTPIssuerWorld(t, "ka")
	d := w.start()
	w.bootstrap("ka")
	for i, tc := range []struct{ status, n int }{{503, 2}, {429, 1}} {
		srv.FailNext(tc.n, tc.status)
		start := time.Now()
		id := w.rotate("ka")
		seen := w.waitFor(id, "retrying", 10*time.Second, func(r issuerRotation) bool { return r.Attempts > 0 && r.LastError != "" })
		if seen.Phase != "minting" || !strings.Contains(seen.LastError, fmt.Sprintf("HTTP %d", tc.status)) ||
			!strings.Contains(seen.LastError, "retry after 1s") || seen.ErrorReason == "" {
			t.Fatalf("while retrying %d: %+v", tc.status, seen)
		}
		r := w.waitRotation(id, 15*time.Second)
		if r.Phase != "done" || r.NewGeneration != i+2 {
			t.Fatalf("after %d×%d: rotation ended %s: %s %s", tc.n, tc.status, r.Phase, r.Outcome, r.LastError)
		}
		var retries []auditEvent
		for _, e := range w.auditOf(id) {
			if e.Action == "step.retry" {
				retries = append(retries, e)
			}
		}
		if len(retries) != tc.n {
			t.Fatalf("%d step.retry events, want %d: %v", len(retries), tc.n, auditActions(w.auditOf(id)))
		}
		// Each retry waited for Retry-After (1 s) rather than retry_base (100 ms).
		if took := time.Since(start); took < time.Duration(tc.n)*time.Second {
			t.Fatalf("%d×%d with Retry-After: 1 recovered in %s: Retry-After was not honoured", tc.n, tc.status, took)
		}
		t.Logf("%d×%d: attempts %d, last error %q (%s); done in %s", tc.n, tc.status, seen.Attempts, seen.LastError, seen.ErrorReason, time.Since(start).Round(time.Millisecond))
	}
	if got := kaDataStatus(t, srv, w.sink("ka").Current.Value); got != 200 {
		t.Fatalf("delivered key after the retried rotations: %d", got)
	}
	if active, _ := kaKeysNamed(srv, "ka-v", true); len(active) != 1 || active[0].Name != "ka-v3" {
		t.Fatalf("live keys after two rotations: %+v, want ka-v3 only", active)
	}
	d.stop()
	w.scanForSecrets()
}

// A wrong admin token (the token file's contents replaced) makes the admin
// API answer 401: permanent, so nothing is retried, and the rotation rolls
// back with the reason in its outcome. The roll-back must itself ask the
// server whether ka-v2 exists (invariant 2: no orphan), which the same 401
// prevents, so it holds for a human; with the token fixed, `rekey retry`
// completes it: failed, the old key current and live, nothing minted.
// Neither token appears in any output.
func TestHTTPIssuerRejectedAdminToken(t *testing.T) {
	t.Parallel()
	w, srv := newHTTPIssuerWorld(t, "ka")
	d := w.start()
	w.bootstrap("ka")
	old := w.sink("ka").Current
	tokenFile := filepath.Join(w.Dir(), kaTokenFile)
	wrong := "ka-admin-wrong-" + issuerRandomHex(t, 16)
	addSecret(wrong)
	writeFile(t, tokenFile, wrong)

	id := w.rotate("ka")
	r := w.waitFor(id, "stopped", 10*time.Second, func(r issuerRotation) bool {
		return r.Phase == "failed" || r.Hold == "failed"
	})
	for _, s := range []string{r.Outcome, r.LastError, r.HoldDetail} {
		if !hasAll(s, "HTTP 401", "admin credentials were rejected") {
			t.Fatalf("the 401 is not the stated reason: %+v", r)
		}
	}
	if r.Attempts != 0 || r.ErrorReason != "auth" || r.Phase != "rolling_back" {
		t.Fatalf("a 401 must stop at once (no retry, reason auth, rolling back): %+v", r)
	}
	if acts := auditActions(w.auditOf(id)); slices.Contains(acts, "step.retry") || slices.Contains(acts, "minted") {
		t.Fatalf("audit after a 401: %v", acts)
	}
	w.waitNotified(5*time.Second, "ka", "HTTP 401")

	writeFile(t, tokenFile, srv.AdminToken())
	if out, code := w.cli("", "retry", id, "--as", "ops"); code != 0 {
		t.Fatalf("retry: exit %d: %s", code, out)
	}
	end := w.waitRotation(id, 10*time.Second)
	if end.Phase != "failed" || !hasAll(end.Outcome, "failed in minting", "HTTP 401") {
		t.Fatalf("after the roll-back: %+v", end)
	}
	doc := w.sink("ka")
	if doc.Current == nil || doc.Current.Value != old.Value || doc.Pending != nil || doc.Previous != nil {
		t.Fatalf("sink after roll-back: %+v", doc)
	}
	if got := kaDataStatus(t, srv, old.Value); got != 200 {
		t.Fatalf("old key after roll-back: %d, want 200", got)
	}
	if active, revoked := kaKeysNamed(srv, "ka-v", true); len(active) != 1 || active[0].Name != "ka-v1" || len(revoked) != 0 {
		t.Fatalf("server keys: active %+v revoked %+v, want ka-v1 only", active, revoked)
	}
	d.stop()
	w.scanForSecrets()
}
