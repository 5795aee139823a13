package e2e

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/testing/kubeadapt"
)

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
	id, orphan := killBetweenMintAndRecord(t, w, srv)

	start := time.Now()
	d := w.start()
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
	if out, code := w.cli("", "retry", id); code != 0 {
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

// killBetweenMintAndRecord bootstraps key ka, then kills the daemon of a
// rotation right after the issuer answered its mint of ka-v2 and before
// rekey recorded it. It returns the rotation and the id of the one live
// ka-v2 the server holds, which rekey never saw.
func killBetweenMintAndRecord(t *testing.T, w *issuerWorld, srv *kubeadapt.Server) (rotation, unrecorded string) {
	t.Helper()
	d := w.start()
	w.bootstrap("ka")
	d.stop()
	d = w.start("REKEY_FAILPOINT=minting:after")
	rotation = w.rotate("ka")
	if !d.waitKilled(t, 15*time.Second) {
		t.Fatal("the daemon was not killed at minting:after")
	}
	if !strings.Contains(readFile(t, d.log), `"failpoint":"minting:after"`) {
		t.Fatal("killed, but not at the failpoint")
	}
	live, _ := kaKeysNamed(srv, "ka-v2", false)
	if len(live) != 1 {
		t.Fatalf("after the crash the server has %d live ka-v2, want the 1 unrecorded", len(live))
	}
	return rotation, live[0].ID
}
