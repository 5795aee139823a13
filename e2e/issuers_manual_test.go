package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/testing/kubeadapt"
)

// manualIssuerYAML is a manual issuer for Kubeadapt's dashboard-only keys: a
// submitted secret must look like a key and pass the data API probe.
func manualIssuerYAML(baseURL string) string {
	return `  - name: dashboard
    type: manual
    pattern: '^ka_live_[0-9A-Za-z]{32}$'
    verify:
      url: ` + baseURL + `/v1/clusters
      not: [401]
`
}

func newManualIssuerWorld(t *testing.T, key string) (*issuerWorld, *kubeadapt.Server) {
	t.Helper()
	srv := startIssuerKubeadapt(t)
	return newIssuerWorld(t, key, "dashboard", func(string) string { return manualIssuerYAML(srv.URL()) }), srv
}

// dashboardOperator is the person at the dashboard, scripted.
type dashboardOperator struct {
	t   *testing.T
	w   *issuerWorld
	srv *kubeadapt.Server
}

// mint creates a key in the "dashboard" as the instructions asked.
func (o dashboardOperator) mint(name string) (kubeadapt.KeyInfo, string) {
	o.t.Helper()
	k, secret, err := o.srv.CreateKey(kubeadapt.KeyRequest{Name: name, Scopes: []string{kubeadapt.ScopeClustersRead}})
	if err != nil {
		o.t.Fatal(err)
	}
	addSecret(secret)
	return k, secret
}

// awaitSecret waits until the rotation asks for a secret and checks that
// the instructions name what to mint.
func (o dashboardOperator) awaitSecret(id, name string) issuerRotation {
	o.t.Helper()
	r := o.w.waitFor(id, "waiting for a secret", 10*time.Second, func(r issuerRotation) bool { return r.Hold == "secret" })
	if r.Phase != "minting" || !hasAll(r.HoldDetail, name, "clusters:read", "rekey submit "+id) {
		o.t.Fatalf("mint instructions do not name %s, its scopes and the command: %+v", name, r)
	}
	return r
}

// submit runs `rekey submit` with the secret on stdin.
func (o dashboardOperator) submit(id, secret string) (string, int) {
	o.t.Helper()
	return o.w.cli(secret+"\n", "submit", id)
}

// A key only a person can mint: the bootstrap and a staged rotation each
// wait for the dashboardOperator to mint <key>-vN in the dashboard and submit it
// (`rekey submit`, secret on stdin); a secret of the wrong shape is refused
// without being quoted and changes nothing; revocation waits until the
// dashboardOperator revoked the old key by hand and ran `rekey confirm`. At the end
// the old key gets 401 and the new one 200.
func TestManualIssuerScriptedOperator(t *testing.T) {
	t.Parallel()
	w, srv := newManualIssuerWorld(t, "dash")
	op := dashboardOperator{t: t, w: w, srv: srv}
	d := w.start()

	// Bootstrap: generation 1 needs a submit too.
	boot := w.activeRotation("dash", 10*time.Second)
	op.awaitSecret(boot, "dash-v1")
	v1, s1 := op.mint("dash-v1")
	if out, code := op.submit(boot, s1); code != 0 {
		t.Fatalf("submit generation 1: exit %d: %s", code, out)
	}
	if r := w.waitRotation(boot, 10*time.Second); r.Phase != "done" {
		t.Fatalf("bootstrap ended %s: %s %s", r.Phase, r.Outcome, r.LastError)
	}
	if doc := w.sink("dash"); doc.Current == nil || doc.Current.Value != s1 {
		t.Fatalf("bootstrap did not deliver the submitted key: %+v", doc)
	}

	start := time.Now()
	id := w.rotate("dash")
	held := op.awaitSecret(id, "dash-v2")
	if !strings.Contains(held.HoldDetail, "dash-v1") {
		t.Fatalf("instructions do not say to copy the settings of dash-v1: %s", held.HoldDetail)
	}
	auditBefore := len(w.auditOf(id))

	// Wrong shapes: refused, not quoted, nothing changes.
	for _, bad := range []string{"not-a-key", "ka_live_" + strings.Repeat("Z", 31) + "!"} {
		addSecret(bad)
		out, code := op.submit(id, bad)
		if (code != 1 && code != 3) || !hasAll(out, "refused", "does not match the pattern") || strings.Contains(out, bad) {
			t.Fatalf("submit %d chars of the wrong shape: exit %d: %s", len(bad), code, out)
		}
		t.Logf("wrong shape refused: exit %d: %s", code, strings.TrimSpace(out))
	}
	if r := w.rotation(id); r.Phase != "minting" || r.Hold != "secret" || r.NewGeneration != 2 || r.UpdatedAt != held.UpdatedAt {
		t.Fatalf("a refused submit changed the rotation: %+v", r)
	}
	// Each refusal is audited (who — the break-glass principal here —,
	// when, why — never the value), and
	// nothing else is.
	after := w.auditOf(id)
	if n := len(after) - auditBefore; n != 2 {
		t.Fatalf("two refused submits wrote %d audit events, want one each", n)
	}
	for _, ev := range after[auditBefore:] {
		if ev.Action != "submit.refused" || !strings.HasPrefix(ev.Actor, "break-glass:") || !strings.Contains(ev.Detail["why"], "does not match the pattern") {
			t.Fatalf("refusal audit event %+v", ev)
		}
	}

	v2, s2 := op.mint("dash-v2")
	if out, code := op.submit(id, s2); code != 0 {
		t.Fatalf("submit generation 2: exit %d: %s", code, out)
	}
	r := w.waitFor(id, "waiting for a confirmation", 10*time.Second, func(r issuerRotation) bool { return r.Hold == "confirm" })
	if r.Phase != "revoking" || !strings.Contains(r.HoldDetail, "dash-v1") || strings.Contains(r.HoldDetail, "dash-v2") {
		t.Fatalf("revoke instructions must name dash-v1 (only): %+v", r)
	}
	// Not revoked by rekey: the old key still works until the dashboardOperator acts.
	if doc := w.sink("dash"); doc.Current == nil || doc.Current.Value != s2 || kaDataStatus(t, srv, s1) != 200 {
		t.Fatalf("before the confirmation: sink %+v, old key %d", doc, kaDataStatus(t, srv, s1))
	}
	if _, err := srv.Revoke(v1.ID); err != nil {
		t.Fatal(err)
	}
	if out, code := w.cli("", "confirm", id); code != 0 {
		t.Fatalf("confirm: exit %d: %s", code, out)
	}
	end := w.waitRotation(id, 10*time.Second)
	if end.Phase != "done" {
		t.Fatalf("rotation ended %s: %s %s", end.Phase, end.Outcome, end.LastError)
	}
	t.Logf("manual rotation, scripted operator: %s", time.Since(start).Round(time.Millisecond))
	doc := w.sink("dash")
	if doc.Current == nil || doc.Current.Value != s2 || doc.Current.Generation != 2 || doc.Pending != nil || doc.Previous != nil {
		t.Fatalf("sink at the end: %+v", doc)
	}
	if got := kaDataStatus(t, srv, s2); got != 200 {
		t.Fatalf("new key: %d, want 200", got)
	}
	if got := kaDataStatus(t, srv, s1); got != 401 {
		t.Fatalf("old key: %d, want 401", got)
	}
	if issuerID, gen := w.keyIssuerID("dash"); issuerID != "dash-v2" || gen != 2 {
		t.Fatalf("rekey records %s generation %d for %s", issuerID, gen, v2.ID)
	}
	acts := auditActions(w.auditOf(id))
	for _, want := range []string{"secret.submitted", "minted", "verified", "revoke.confirmed", "finished"} {
		if !slices.Contains(acts, want) {
			t.Fatalf("audit lacks %q: %v", want, acts)
		}
	}
	d.stop()
	w.scanForSecrets()
}

// submitAPI submits through the admin API, which runs in the daemon (so
// the daemon stages the secret itself). A daemon killed by a failpoint
// while answering leaves no answer: that returns 0.
func (o dashboardOperator) submitAPI(id, secret string) int {
	o.t.Helper()
	body, _ := json.Marshal(map[string]string{"secret": secret})
	req, _ := http.NewRequest("POST", "http://"+o.w.AdminAddr()+"/v1/rotations/"+id+"/submit", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	o.w.record(b.Bytes())
	return resp.StatusCode
}

// Killed at staging:before right after the daemon accepted a submitted
// dash-v2: its secret existed only in the dead process. rekey cannot revoke
// a dashboard key, so after the restart it abandons the generation and
// tells the operator precisely what to revoke (dash-v2 and its
// fingerprint) in a notification and the log notifier's line, then asks
// for dash-v3. The operator revokes dash-v2, submits dash-v3 and confirms
// the revocation of dash-v1: one live key remains, the delivered one.
func TestManualIssuerCrashAfterSubmit(t *testing.T) {
	t.Parallel()
	w, srv := newManualIssuerWorld(t, "dash")
	op := dashboardOperator{t: t, w: w, srv: srv}
	d := w.start()
	boot := w.activeRotation("dash", 10*time.Second)
	op.awaitSecret(boot, "dash-v1")
	v1, s1 := op.mint("dash-v1")
	if out, code := op.submit(boot, s1); code != 0 {
		t.Fatalf("submit generation 1: exit %d: %s", code, out)
	}
	if r := w.waitRotation(boot, 10*time.Second); r.Phase != "done" {
		t.Fatalf("bootstrap ended %s: %s %s", r.Phase, r.Outcome, r.LastError)
	}
	d.stop()

	d = w.start("REKEY_FAILPOINT=staging:before")
	id := w.rotate("dash")
	op.awaitSecret(id, "dash-v2")
	v2, s2 := op.mint("dash-v2")
	if code := op.submitAPI(id, s2); code != 0 {
		t.Fatalf("submit through the admin API answered %d; the daemon should have died at staging:before", code)
	}
	if !d.waitKilled(t, 10*time.Second) {
		t.Fatal("the daemon was not killed at staging:before")
	}
	if !strings.Contains(readFile(t, d.log), `"failpoint":"staging:before"`) {
		t.Fatal("killed, but not at the failpoint")
	}

	start := time.Now()
	d = w.start()
	sum := sha256.Sum256([]byte(s2))
	fp := hex.EncodeToString(sum[:])[:12]
	msg := w.waitNotified(10*time.Second, "credential.orphan", "dash-v2", fp, "revoke it by hand")
	t.Logf("the operator is told: %s", msg)
	for deadline := patient(5 * time.Second); !logSays(readFile(t, d.log), "credential.orphan", "dash-v2", fp, "revoke it by hand"); {
		if time.Now().After(deadline) {
			t.Fatal("the log notifier did not say what to revoke")
		}
		time.Sleep(50 * time.Millisecond)
	}
	r := op.awaitSecret(id, "dash-v3")
	if r.NewGeneration != 3 {
		t.Fatalf("after the abandoned dash-v2: %+v", r)
	}
	if doc := w.sink("dash"); doc.Current == nil || doc.Current.Value != s1 || doc.Pending != nil {
		t.Fatalf("sink after the abandoned generation: %+v", doc)
	}
	if _, err := srv.Revoke(v2.ID); err != nil {
		t.Fatal(err)
	}
	_, s3 := op.mint("dash-v3")
	if out, code := op.submit(id, s3); code != 0 {
		t.Fatalf("submit generation 3: exit %d: %s", code, out)
	}
	r = w.waitFor(id, "waiting for a confirmation", 10*time.Second, func(r issuerRotation) bool { return r.Hold == "confirm" })
	if !strings.Contains(r.HoldDetail, "dash-v1") {
		t.Fatalf("revoke instructions: %s", r.HoldDetail)
	}
	if _, err := srv.Revoke(v1.ID); err != nil {
		t.Fatal(err)
	}
	if out, code := w.cli("", "confirm", id); code != 0 {
		t.Fatalf("confirm: exit %d: %s", code, out)
	}
	if end := w.waitRotation(id, 10*time.Second); end.Phase != "done" || end.NewGeneration != 3 {
		t.Fatalf("rotation ended %s (generation %d): %s %s", end.Phase, end.NewGeneration, end.Outcome, end.LastError)
	}
	t.Logf("restart to done through the abandoned generation: %s", time.Since(start).Round(time.Millisecond))
	doc := w.sink("dash")
	if doc.Current == nil || doc.Current.Value != s3 || doc.Pending != nil || doc.Previous != nil {
		t.Fatalf("sink at the end: %+v", doc)
	}
	active, _ := kaKeysNamed(srv, "dash-v", true)
	if len(active) != 1 || active[0].Name != "dash-v3" || kaDataStatus(t, srv, s3) != 200 {
		t.Fatalf("live keys at the server: %+v", active)
	}
	for _, old := range []string{s1, s2} {
		if got := kaDataStatus(t, srv, old); got != 401 {
			t.Fatalf("a revoked generation answers %d", got)
		}
	}
	d.stop()
	w.scanForSecrets()
}

// logSays reports whether one line of a daemon log holds every want.
func logSays(log string, want ...string) bool {
	for _, line := range strings.Split(log, "\n") {
		if hasAll(line, want...) {
			return true
		}
	}
	return false
}
