package e2e

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/testing/kubeadapt"
)

// answerLosingProxy serves the Kubeadapt-style API and, once armed, lets
// the next create reach the server — which creates the key and stores the
// answer for its idempotency key — and then holds the answer back until
// the client gives up: a mint that timed out after the API created the key.
type answerLosingProxy struct {
	srv   *kubeadapt.Server
	armed atomic.Bool
	lost  atomic.Int32
}

func (p *answerLosingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && r.URL.Path == "/admin/v1/api-keys" && p.armed.CompareAndSwap(true, false) {
		p.srv.ServeHTTP(httptest.NewRecorder(), r)
		<-r.Context().Done() // the client timed out: its answer is lost
		p.lost.Add(1)
		return
	}
	p.srv.ServeHTTP(w, r)
}

// bodyKeyedIssuer edits the example http issuer to send the intent's key
// in the mint body (no idempotency_key_header), with the window that then
// must be stated, and a 1s request timeout.
func bodyKeyedIssuer(t *testing.T, item string) string {
	t.Helper()
	for _, r := range [][2]string{
		{"    timeout: 10s\n", "    timeout: 1s\n"},
		{`{"name": {{json .Name}},`, `{"name": {{json .Name}}, "idempotency_key": {{json .IdempotencyKey}},`},
		{"      # idempotency_window: 24h    # how long the API keeps a key (default 24h)\n", "      idempotency_window: 24h\n"},
	} {
		if n := strings.Count(item, r[0]); n != 1 {
			t.Fatalf("examples/kubeadapt-issuer.yaml: %q occurs %d times, want 1", r[0], n)
		}
		item = strings.Replace(item, r[0], r[1], 1)
	}
	return item
}

// An API that takes the idempotency key in the mint body, and a mint that
// times out after the API created ka-v2: rekey asks again with the same
// key (the issuer declares that it honours keys) and the API replays
// ka-v2. Before, rekey found ka-v2 by name, revoked it as an orphan,
// minted again with the same key, and staged the revoked key the API
// handed back. Now ka-v2 is created once, never revoked, and delivered.
func TestHTTPIssuerBodyKeyedMintTimedOut(t *testing.T) {
	t.Parallel()
	srv := startIssuerKubeadapt(t)
	proxy := &answerLosingProxy{srv: srv}
	ts := httptest.NewServer(proxy)
	t.Cleanup(ts.Close)
	w := newIssuerWorld(t, "ka", "kubeadapt", func(dir string) string {
		return bodyKeyedIssuer(t, exampleHTTPIssuer(t, ts.URL, filepath.Join(dir, kaTokenFile)))
	})
	writeFile(t, filepath.Join(w.Dir(), kaTokenFile), srv.AdminToken())
	d := w.start()
	w.bootstrap("ka")

	proxy.armed.Store(true)
	start := time.Now()
	id := w.rotate("ka")
	r := w.waitRotation(id, 20*time.Second)
	if r.Phase != "done" || r.NewGeneration != 2 {
		t.Fatalf("rotation ended %s (generation %d): %s %s", r.Phase, r.NewGeneration, r.Outcome, r.LastError)
	}
	t.Logf("mint timed out, then replayed by its body key: done in %s", time.Since(start).Round(time.Millisecond))
	if proxy.lost.Load() != 1 {
		t.Fatalf("%d mint answers lost, want 1", proxy.lost.Load())
	}
	active, revoked := kaKeysNamed(srv, "ka-v2", false)
	if len(active) != 1 || len(revoked) != 0 {
		t.Fatalf("ka-v2 at the server: live %+v, revoked %+v; want one, created once and live", active, revoked)
	}
	if st := srv.Idempotency(); st.Replays != 1 || st.Mismatches != 0 {
		t.Fatalf("server idempotency %+v, want 1 replay", st)
	}
	if newID, _ := w.keyIssuerID("ka"); newID != active[0].ID {
		t.Fatalf("rekey records %s, the live ka-v2 is %s", newID, active[0].ID)
	}
	doc := w.sink("ka")
	if doc.Current == nil || kaDataStatus(t, srv, doc.Current.Value) != 200 {
		t.Fatalf("the delivered key does not work: %+v", doc)
	}
	acts := auditActions(w.auditOf(id))
	for _, a := range acts {
		if a == "orphan.found" || a == "orphan.revoked" || a == "mint.abandoned" {
			t.Fatalf("a replayed mint took the %s path: %v", a, acts)
		}
	}
	d.stop()
	w.scanForSecrets()
}

// An emergency at an API that stored its first answer to the mint's key, a
// 500, and replays it for the key's whole window (24h): rekey abandons
// that intent at the first replay and mints ka-v3 under a new key, instead
// of leaving the key without a working credential for a day.
func TestHTTPIssuerStoredFailureAbandonsTheMint(t *testing.T) {
	t.Parallel()
	srv := startIssuerKubeadapt(t)
	w := newIssuerWorld(t, "ka", "kubeadapt", func(dir string) string {
		return idempotentIssuer(t, exampleHTTPIssuer(t, srv.URL(), filepath.Join(dir, kaTokenFile)))
	})
	writeFile(t, filepath.Join(w.Dir(), kaTokenFile), srv.AdminToken())
	d := w.start()
	w.bootstrap("ka")
	old := w.sink("ka").Current

	srv.FailNextCreates(1, http.StatusInternalServerError)
	start := time.Now()
	out, code := w.cliStdout("", "rotate", "ka", "--emergency", "--reason", "issuer e2e", "-o", "json")
	if code != 0 {
		t.Fatalf("rotate --emergency: exit %d: %s", code, out)
	}
	var rv rotationView
	if err := json.Unmarshal([]byte(out), &rv); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	r := w.waitRotation(rv.ID, 20*time.Second)
	if r.Phase != "done" || r.NewGeneration != 3 {
		t.Fatalf("emergency ended %s (generation %d): %s %s", r.Phase, r.NewGeneration, r.Outcome, r.LastError)
	}
	t.Logf("stored 500 replayed, intent abandoned, ka-v3 delivered in %s", time.Since(start).Round(time.Millisecond))
	if st := srv.Idempotency(); st.Replays != 1 {
		t.Fatalf("server idempotency %+v, want the stored 500 replayed once", st)
	}
	if active, _ := kaKeysNamed(srv, "ka-v", true); len(active) != 1 || active[0].Name != "ka-v3" {
		t.Fatalf("live keys: %+v, want ka-v3 only", active)
	}
	doc := w.sink("ka")
	if doc.Current == nil || doc.Current.Generation != 3 || kaDataStatus(t, srv, doc.Current.Value) != 200 || kaDataStatus(t, srv, old.Value) != 401 {
		t.Fatalf("after the emergency: %+v", doc)
	}
	var why string
	for _, e := range w.auditOf(rv.ID) {
		if e.Action == "mint.abandoned" {
			why = e.Detail["why"]
		}
	}
	if !hasAll(why, "replays a failed answer", "HTTP 500") {
		t.Fatalf("mint.abandoned why %q: %v", why, auditActions(w.auditOf(rv.ID)))
	}
	w.waitNotified(5*time.Second, "abandoned the mint of ka-v2", "ka-v3")
	d.stop()
	w.scanForSecrets()
}
