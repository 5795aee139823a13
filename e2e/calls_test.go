package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/app"
	"github.com/rekeyhq/rekey/config"
	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/testing/testenv"
)

// The API calls of one rotation, counted by recording proxies in front of
// real Vault, real moto (Secrets Manager) and the Kubeadapt-style issuer,
// against the documented minimum (docs/ADAPTERS.md, "API calls per
// rotation"). A staged rotation with verify on makes at most 14: issuer 3
// (mint, verify, revoke), Vault 5 (the preflight read, three check-and-set
// writes, the read before the revoke), Secrets Manager 6 (Describe,
// PutSecretValue, the AWSCURRENT move, the AWSPENDING clean-up, Describe
// before the revoke, the AWSPREVIOUS clean-up). An emergency rotation at
// most 8: issuer 3 (revoke, mint, verify), Vault 2 (read, one write of the
// replacement as current), Secrets Manager 3 (Describe, a Put that makes
// the replacement current, the AWSPREVIOUS clean-up). Each sink is held to
// its own share too, so a configuration with one of them is covered.

// callLimits is the most calls each upstream may see for one rotation.
type callLimits struct{ issuer, vault, sm, total int }

var (
	stagedLimits    = callLimits{issuer: 3, vault: 5, sm: 6, total: 14}
	emergencyLimits = callLimits{issuer: 3, vault: 2, sm: 3, total: 8}
)

// recorder is a reverse proxy that counts the requests it forwards by API
// operation: the calls rekey made, each once. It absorbs the test servers'
// own hiccups so that they cannot change a count: each request goes on a
// fresh connection (moto resets a reused one now and then right after
// answering), and a 500 from moto (its Secrets Manager backend is not
// thread-safe) is sent again, a few times, before rekey sees it.
type recorder struct {
	name string
	op   func(*http.Request) string
	srv  *httptest.Server
	mu   sync.Mutex
	ops  map[string]int
}

func newRecorder(t *testing.T, name, upstream string, op func(*http.Request) string) *recorder {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	rc := &recorder{name: name, op: op, ops: map[string]int{}}
	proxy := httputil.NewSingleHostReverseProxy(u)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true
	proxy.Transport = retryServerErrors{tr}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.mu.Lock()
		rc.ops[rc.op(r)]++
		rc.mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// retryServerErrors sends a request again on a 500 (at most 5 times): a
// flaky test server, not a call of rekey's.
type retryServerErrors struct{ next http.RoundTripper }

func (rt retryServerErrors) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		r.Body.Close()
		body = b
	}
	for attempt := 1; ; attempt++ {
		r.Body = io.NopCloser(bytes.NewReader(body))
		resp, err := rt.next.RoundTrip(r)
		if err != nil || resp.StatusCode != http.StatusInternalServerError || attempt == 5 {
			return resp, err
		}
		resp.Body.Close()
	}
}

// take returns the counts since the last take and resets them.
func (rc *recorder) take() (map[string]int, int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	got, n := rc.ops, 0
	for _, c := range got {
		n += c
	}
	rc.ops = map[string]int{}
	return got, n
}

// vaultOp is the method and path of a Vault request (the path names the
// operation: data or metadata of which secret).
func vaultOp(r *http.Request) string { return r.Method + " " + r.URL.Path }

// smOp is the Secrets Manager operation (X-Amz-Target).
func smOp(r *http.Request) string {
	if t := r.Header.Get("X-Amz-Target"); t != "" {
		return strings.TrimPrefix(t, "secretsmanager.")
	}
	return r.Method + " " + r.URL.Path
}

var kaKeyID = regexp.MustCompile(`/api-keys/[^/?]+`)

// issuerOp is the method and path of an issuer request, the key id
// replaced by {id}; a list names its query.
func issuerOp(r *http.Request) string {
	p := kaKeyID.ReplaceAllString(r.URL.Path, "/api-keys/{id}")
	if r.URL.RawQuery != "" {
		p += "?" + strings.SplitN(r.URL.RawQuery, "=", 2)[0]
	}
	return r.Method + " " + p
}

// callsWorld is a daemon in-process whose one key "ka" is minted by the
// example http issuer and delivered to Vault and Secrets Manager, each
// behind a recorder.
type callsWorld struct {
	t                 *testing.T
	d                 *app.Daemon
	issuer, vault, sm *recorder
}

func newCallsWorld(t *testing.T) *callsWorld {
	t.Helper()
	v, m := testenv.Vault(t), testenv.Moto(t)
	testenv.SetAWSEnv(t)
	srv := startIssuerKubeadapt(t)
	w := &callsWorld{t: t,
		issuer: newRecorder(t, "issuer", srv.URL(), issuerOp),
		vault:  newRecorder(t, "vault", v.Addr, vaultOp),
		sm:     newRecorder(t, "secretsmanager", m.Endpoint, smOp),
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, kaTokenFile), srv.AdminToken())
	writeFile(t, filepath.Join(dir, "vault-token"), v.Token)
	path := fmt.Sprintf("calls/%d", time.Now().UnixNano())
	cfg := fmt.Sprintf(`daemon:
  listen: 127.0.0.1:0
  poll_interval: 50ms
  retry_base: 50ms
  retry_max: 1s
  log_level: error
store: {type: sqlite, path: %[1]s/rekey.db}
issuers:
%[2]s
sinks:
  - {name: vault, type: vault, address: %[3]q, auth: {method: token, token_file: %[1]s/vault-token}}
  - {name: aws, type: awssm, region: us-east-1, endpoint: %[4]q}
traffic: [{name: fixed, type: fixed}]
defaults:
  verify: true
  drain: {source: fixed, quiet_period: 0s, max_wait: 1h, poll_interval: 10ms}
  watch: {period: 0s, poll_interval: 10ms}
keys:
  - name: ka
    issuer: kubeadapt
    owners: [ops@example.com]
    params: {scopes: ["clusters:read"]}
    sinks: [{sink: vault, path: %[5]s}, {sink: aws, path: %[5]s}]
  - name: kv
    issuer: kubeadapt
    owners: [ops@example.com]
    params: {scopes: ["clusters:read"]}
    sinks: [{sink: vault, path: %[5]s-vault-only}]
  - name: ks
    issuer: kubeadapt
    owners: [ops@example.com]
    params: {scopes: ["clusters:read"]}
    sinks: [{sink: aws, path: %[5]s-aws-only}]
`, dir, exampleHTTPIssuer(t, w.issuer.srv.URL, filepath.Join(dir, kaTokenFile)), w.vault.srv.URL, w.sm.srv.URL, path)
	file := filepath.Join(dir, "rekey.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	w.d, err = app.Build(ctx, c, slog.New(slog.DiscardHandler), app.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = w.d.Engine.Run(ctx); close(done) }()
	t.Cleanup(func() { stop(); <-done; w.d.Close() })
	return w
}

// rotate runs one rotation of ka to done and returns the calls each
// upstream saw for it. A rotation that had to retry a step (a test server
// failed a call) is not the path being counted: another one is measured,
// at most three in all.
func (w *callsWorld) rotate(req rotator.TriggerRequest) (issuer, vault, sm map[string]int, counts callLimits) {
	w.t.Helper()
	for try := 1; ; try++ {
		issuer, vault, sm, counts, retried := w.rotateOnce(req)
		if !retried {
			return issuer, vault, sm, counts
		}
		if try == 3 {
			w.t.Fatalf("%s: three rotations in a row retried a step; no clean rotation to count", req.Trigger)
		}
		w.t.Logf("%s rotation retried a step (%d calls); measuring another one", req.Trigger, counts.total)
	}
}

func (w *callsWorld) rotateOnce(req rotator.TriggerRequest) (issuer, vault, sm map[string]int, counts callLimits, retried bool) {
	w.t.Helper()
	w.issuer.take()
	w.vault.take()
	w.sm.take()
	if req.Key == "" {
		req.Key = "ka"
	}
	req.Actor = "calls-test"
	r, err := w.d.Engine.Trigger(context.Background(), req)
	if err != nil {
		w.t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, err := w.d.Store.GetRotation(context.Background(), r.ID)
		if err != nil {
			w.t.Fatal(err)
		}
		if got.Phase.Terminal() {
			if got.Phase != rotator.PhaseDone {
				w.t.Fatalf("%s rotation ended %s: %s %s", req.Trigger, got.Phase, got.Outcome, got.LastError)
			}
			break
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("%s rotation still in %s after 60s: %s", req.Trigger, got.Phase, got.LastError)
		}
		time.Sleep(20 * time.Millisecond) // poll interval of a deadline loop
	}
	issuer, counts.issuer = w.issuer.take()
	vault, counts.vault = w.vault.take()
	sm, counts.sm = w.sm.take()
	counts.total = counts.issuer + counts.vault + counts.sm
	audit, err := w.d.Store.Audit(context.Background(), rotator.AuditFilter{RotationID: r.ID})
	if err != nil {
		w.t.Fatal(err)
	}
	for _, e := range audit {
		retried = retried || e.Action == "step.retry"
	}
	return issuer, vault, sm, counts, retried
}

func fmtOps(ops map[string]int) string {
	var parts []string
	for op, n := range ops {
		parts = append(parts, fmt.Sprintf("%s ×%d", op, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func checkCalls(t *testing.T, kind string, issuer, vault, sm map[string]int, got, limit callLimits) {
	t.Helper()
	t.Logf("%s rotation: %d calls — issuer %d (%s); vault %d (%s); secretsmanager %d (%s)", kind, got.total,
		got.issuer, fmtOps(issuer), got.vault, fmtOps(vault), got.sm, fmtOps(sm))
	for _, c := range []struct {
		name       string
		got, limit int
	}{{"issuer", got.issuer, limit.issuer}, {"vault", got.vault, limit.vault}, {"secretsmanager", got.sm, limit.sm}, {"total", got.total, limit.total}} {
		if c.got > c.limit {
			t.Errorf("%s rotation: %s made %d calls, the documented minimum is %d (docs/ADAPTERS.md)", kind, c.name, c.got, c.limit)
		}
	}
}

func TestAPICallsPerRotation(t *testing.T) {
	w := newCallsWorld(t)
	// The bootstrap creates the secrets; its calls are not counted.
	w.rotate(rotator.TriggerRequest{Trigger: rotator.TriggerBootstrap})

	i, v, s, got := w.rotate(rotator.TriggerRequest{Trigger: rotator.TriggerManual})
	checkCalls(t, "staged", i, v, s, got, stagedLimits)
	// A second staged rotation: the figures hold from one rotation to the
	// next, not only after a bootstrap.
	i, v, s, got = w.rotate(rotator.TriggerRequest{Trigger: rotator.TriggerManual})
	checkCalls(t, "second staged", i, v, s, got, stagedLimits)

	w.checkDelivered(false)

	i, v, s, got = w.rotate(rotator.TriggerRequest{Trigger: rotator.TriggerExposure, Mode: rotator.ModeEmergency})
	checkCalls(t, "emergency", i, v, s, got, emergencyLimits)
	// Secrets Manager keeps AWSPREVIOUS on the revoked version (as after
	// any of its own rotations) until the next staged rotation.
	w.checkDelivered(true)

	// And a staged rotation after the emergency one.
	i, v, s, got = w.rotate(rotator.TriggerRequest{Trigger: rotator.TriggerManual})
	checkCalls(t, "staged after emergency", i, v, s, got, stagedLimits)
	w.checkDelivered(false)

	// Keys delivered to one of the two stores: each within its share.
	for _, k := range []struct {
		key     string
		noVault bool
	}{{"kv", false}, {"ks", true}} {
		share := func(l callLimits) callLimits {
			if k.noVault {
				l.vault = 0
			} else {
				l.sm = 0
			}
			l.total = l.issuer + l.vault + l.sm
			return l
		}
		w.rotate(rotator.TriggerRequest{Key: k.key, Trigger: rotator.TriggerBootstrap})
		i, v, s, got = w.rotate(rotator.TriggerRequest{Key: k.key, Trigger: rotator.TriggerManual})
		checkCalls(t, k.key+" staged", i, v, s, got, share(stagedLimits))
		i, v, s, got = w.rotate(rotator.TriggerRequest{Key: k.key, Trigger: rotator.TriggerExposure, Mode: rotator.ModeEmergency})
		checkCalls(t, k.key+" emergency", i, v, s, got, share(emergencyLimits))
	}
}

// checkDelivered asserts that both sinks hold the current generation as
// current and nothing else — with awsPrevious, Secrets Manager may label a
// revoked generation AWSPREVIOUS — read from the store's credentials and
// the sinks themselves.
func (w *callsWorld) checkDelivered(awsPrevious bool) {
	w.t.Helper()
	ctx := context.Background()
	k, ok := w.d.Engine.Key("ka")
	if !ok {
		w.t.Fatal("no key ka")
	}
	creds, err := w.d.Store.Credentials(ctx, "ka")
	if err != nil {
		w.t.Fatal(err)
	}
	var cur *rotator.Credential
	revoked := map[string]bool{}
	for _, c := range creds {
		switch c.State {
		case rotator.CredCurrent:
			cur = c
		case rotator.CredRevoked:
			revoked[c.Fingerprint] = true
		}
	}
	if cur == nil {
		w.t.Fatal("no current credential")
	}
	for _, b := range k.Sinks {
		st, err := b.Sink.Inspect(ctx, b.Target)
		if err != nil {
			w.t.Fatal(err)
		}
		prevOK := st.Previous == "" || awsPrevious && b.SinkName == "aws" && revoked[st.Previous]
		if st.Current != cur.Fingerprint || st.Pending != "" || !prevOK || !st.Managed {
			w.t.Fatalf("sink %s holds %+v, want generation %d (%s) current and nothing else", b.SinkName, st, cur.Generation, rotator.ShortFingerprint(cur.Fingerprint))
		}
	}
}
