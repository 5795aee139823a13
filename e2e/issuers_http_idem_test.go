package e2e

import (
	"path/filepath"
	"testing"
	"time"
)

// The same crash as TestHTTPIssuerCrashBetweenMintAndRecord — killed right
// after the issuer created ka-v2 and before rekey recorded it — at an issuer
// configured with idempotency_key_header: the restarted daemon asks again
// with the intent's Idempotency-Key and the server replays the key it
// created, secret included. Nothing is reaped: the server created ka-v2
// once, that key is the one delivered and live, and the audit shows the
// resumed mint, not an orphan.
func TestHTTPIssuerIdempotentCrashBetweenMintAndRecord(t *testing.T) {
	t.Parallel()
	srv := startIssuerKubeadapt(t)
	w := newIssuerWorld(t, "ka", "kubeadapt", func(dir string) string {
		return idempotentIssuer(t, exampleHTTPIssuer(t, srv.URL(), filepath.Join(dir, kaTokenFile)))
	})
	writeFile(t, filepath.Join(w.Dir(), kaTokenFile), srv.AdminToken())
	id, first := killBetweenMintAndRecord(t, w, srv)

	start := time.Now()
	d := w.start()
	r := w.waitRotation(id, 15*time.Second)
	if r.Phase != "done" {
		t.Fatalf("rotation ended %s: %s %s", r.Phase, r.Outcome, r.LastError)
	}
	t.Logf("restart to done, mint replayed: %s", time.Since(start).Round(time.Millisecond))
	active, revoked := kaKeysNamed(srv, "ka-v2", false)
	if len(active) != 1 || len(revoked) != 0 || active[0].ID != first {
		t.Fatalf("ka-v2 at the server: live %+v, revoked %+v; want only %s, created once", active, revoked, first)
	}
	if st := srv.Idempotency(); st.Replays != 1 || st.Mismatches != 0 {
		t.Fatalf("server idempotency %+v, want 1 replay", st)
	}
	if newID, _ := w.keyIssuerID("ka"); newID != first {
		t.Fatalf("rekey records %s, the key created before the crash is %s", newID, first)
	}
	doc := w.sink("ka")
	if doc.Current == nil || doc.Pending != nil || doc.Previous != nil || kaDataStatus(t, srv, doc.Current.Value) != 200 {
		t.Fatalf("sink after recovery: %+v", doc)
	}
	acts := auditActions(w.auditOf(id))
	resumed := false
	for _, e := range w.auditOf(id) {
		switch e.Action {
		case "orphan.found", "orphan.revoked", "abandoned":
			t.Fatalf("a replayed mint took the %s path: %v", e.Action, acts)
		case "mint.resumed":
			resumed = e.Detail["idempotency_key"] == "rekey-"+id+"-v2"
		}
	}
	if !resumed {
		t.Fatalf("no mint.resumed audit event with the intent's key: %v", acts)
	}
	d.stop()
	w.scanForSecrets()
}
