package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the test reads the daemons' database directly

	"github.com/rekeyhq/rekey/notifiers/webhook"
	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/testing/kubeadapt"
)

// The high-availability harness: several rekey processes (the real binary)
// sharing one PostgreSQL database, the Kubeadapt-style server as their
// issuer (one shared server, so that a duplicate mint shows), the file sink,
// and two signed webhook notifiers whose receivers record every delivery by
// its webhook-id. Each daemon has its own configuration file that differs
// from the others only in its address files (port 0, no port picked in
// advance).

const haTemplate = `
daemon:
  listen: 127.0.0.1:0
  address_file: {{.Dir}}/d{{.N}}.addr
  admin_listen: 127.0.0.1:0
  admin_address_file: {{.Dir}}/d{{.N}}.admin.addr
  admin_token_file: {{.Dir}}/admin-token
  schedule: "@every 1h"
  poll_interval: {{.Poll}}
  retry_base: 200ms
  retry_max: 1s
  lease_ttl: {{.TTL}}
  log_level: debug
store:
  type: postgres
  dsn_env: REKEY_HA_DSN
issuers:
{{.Issuer}}
sinks:
  - name: files
    type: file
    dir: {{.Dir}}/secrets
notifiers:
  - name: hook1
    type: webhook
    url: {{.Hook1}}
    secret_file: {{.Dir}}/webhook-secret
  - name: hook2
    type: webhook
    url: {{.Hook2}}
    secret_file: {{.Dir}}/webhook-secret
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
{{- range .Keys}}
  - name: {{.}}
    issuer: kubeadapt
    owners: [alice@example.com]
    params:
      scopes: [clusters:read]
    sinks:
      - sink: files
{{- end}}
`

type haParams struct {
	Dir, Issuer, Hook1, Hook2, TTL, Poll string
	N                                    int
	Keys                                 []string
}

// haCluster is one HA test's world.
type haCluster struct {
	t       *testing.T
	dir     string
	dsn     string
	db      *sql.DB
	ka      *kubeadapt.Server
	kaURL   string
	hooks   [2]*hookLog
	cfgs    []string
	mu      sync.Mutex
	daemons []*haDaemon // by slot; nil or exited when down
	logs    []string
	keys    []string
	ttl     time.Duration
	poll    time.Duration
}

type haDaemon struct {
	slot  int
	cmd   *exec.Cmd
	done  chan struct{}
	admin string
}

func (d *haDaemon) alive() bool {
	if d == nil {
		return false
	}
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// hookLog is one notifier's receiver: every whole, correctly signed
// delivery by webhook-id.
type hookLog struct {
	t   *testing.T
	mu  sync.Mutex
	got map[string]int
	bad int
}

func (h *hookLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("webhook-id")
	body, err := io.ReadAll(r.Body)
	if err != nil || r.ContentLength >= 0 && int64(len(body)) != r.ContentLength {
		w.WriteHeader(http.StatusBadRequest) // cut short by a kill: it comes again
		return
	}
	err = webhook.Verify(webhookSecret, id, r.Header.Get("webhook-timestamp"), body, r.Header.Get("webhook-signature"), time.Now(), 0)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.bad++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	h.got[id]++
	w.WriteHeader(http.StatusNoContent)
}

func (h *hookLog) snapshot() (map[string]int, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]int, len(h.got))
	for k, v := range h.got {
		out[k] = v
	}
	return out, h.bad
}

// slowIssuer delays every request to the issuer, so that a rotation's
// steps take long enough for a kill to land while a lease is held.
func slowIssuer(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(d)
		h.ServeHTTP(w, r)
	})
}

// newHACluster writes the configuration of n daemon slots over dsn.
func newHACluster(t *testing.T, dsn string, n int, keys []string, ttl, poll, issuerDelay time.Duration) *haCluster {
	t.Helper()
	c := &haCluster{t: t, dir: t.TempDir(), dsn: dsn, keys: keys, ttl: ttl, poll: poll, daemons: make([]*haDaemon, n)}
	tok := "ka-admin-" + issuerRandomHex(t, 16)
	addSecret(tok)
	c.ka = kubeadapt.New(kubeadapt.Options{AdminToken: tok})
	hs := httptest.NewServer(slowIssuer(c.ka, issuerDelay))
	t.Cleanup(hs.Close)
	c.kaURL = hs.URL
	var hookURL [2]string
	for i := range c.hooks {
		c.hooks[i] = &hookLog{t: t, got: map[string]int{}}
		srv := httptest.NewServer(c.hooks[i])
		t.Cleanup(srv.Close)
		hookURL[i] = srv.URL
	}
	for name, content := range map[string]string{"admin-token": adminToken, "webhook-secret": webhookSecret, kaTokenFile: tok} {
		writeFile(t, filepath.Join(c.dir, name), content)
	}
	issuer := exampleHTTPIssuer(t, hs.URL, filepath.Join(c.dir, kaTokenFile))
	for i := range n {
		var b bytes.Buffer
		p := haParams{Dir: c.dir, Issuer: issuer, Hook1: hookURL[0], Hook2: hookURL[1], TTL: ttl.String(), Poll: poll.String(), N: i, Keys: keys}
		if err := template.Must(template.New("ha").Parse(haTemplate)).Execute(&b, p); err != nil {
			t.Fatal(err)
		}
		cfg := filepath.Join(c.dir, fmt.Sprintf("rekey-%d.yaml", i))
		writeFile(t, cfg, b.String())
		c.cfgs = append(c.cfgs, cfg)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(4)
	t.Cleanup(func() { db.Close() })
	c.db = db
	t.Cleanup(func() {
		for _, d := range c.all() {
			if d.alive() {
				_ = d.cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-d.done:
				case <-time.After(10 * time.Second):
					_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
					<-d.done
				}
			}
		}
		if t.Failed() {
			for _, l := range c.logs {
				b, _ := os.ReadFile(l)
				if len(b) > 6000 {
					b = b[len(b)-6000:]
				}
				t.Logf("--- %s (tail) ---\n%s", l, b)
			}
		}
	})
	return c
}

func (c *haCluster) all() []*haDaemon {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.daemons)
}

// start runs the daemon of slot i and waits until it has started (alive
// and past its store wait) with a deadline.
func (c *haCluster) start(i int) *haDaemon {
	c.t.Helper()
	addr, adm := filepath.Join(c.dir, fmt.Sprintf("d%d.addr", i)), filepath.Join(c.dir, fmt.Sprintf("d%d.admin.addr", i))
	for _, f := range []string{addr, adm} {
		if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
			c.t.Fatal(err)
		}
	}
	logPath := filepath.Join(c.dir, fmt.Sprintf("daemon-%d-%d.log", i, len(c.logs)))
	lf, err := os.Create(logPath)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(binary, "run", "-c", c.cfgs[i])
	cmd.Env = append(os.Environ(), "REKEY_HA_DSN="+c.dsn)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	d := &haDaemon{slot: i, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); lf.Close(); close(d.done) }()
	c.mu.Lock()
	c.logs = append(c.logs, logPath)
	c.daemons[i] = d
	c.mu.Unlock()
	deadline := patient(startTimeout)
	for {
		if b, err := os.ReadFile(adm); err == nil && d.admin == "" {
			d.admin = strings.TrimSpace(string(b))
		}
		if d.admin != "" {
			var h struct{ Status string }
			if resp, err := http.Get("http://" + d.admin + "/healthz"); err == nil {
				_ = json.NewDecoder(resp.Body).Decode(&h)
				resp.Body.Close()
				if h.Status == "ok" {
					return d
				}
			}
		}
		if !d.alive() {
			b, _ := os.ReadFile(logPath)
			c.t.Fatalf("daemon %d exited during start-up\n%s", i, b)
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("daemon %d did not start in time", i)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill SIGKILLs daemon d's process group and waits for it.
func (c *haCluster) kill(d *haDaemon) {
	c.t.Helper()
	_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-d.done:
	case <-time.After(patient(30 * time.Second).Sub(time.Now())):
		c.t.Fatalf("daemon %d survived SIGKILL", d.slot)
	}
}

// trigger asks a live daemon to rotate key; it reports whether a rotation
// was started (409: one is active already; an error: the daemon died).
func (c *haCluster) trigger(d *haDaemon, key string) bool {
	req, _ := http.NewRequest("POST", "http://"+d.admin+"/v1/keys/"+key+"/rotate", strings.NewReader(`{"reason":"ha test"}`))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	cl := http.Client{Timeout: 10 * time.Second}
	resp, err := cl.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusCreated
}

// dbNow is the lease-comparable "now" of the database (see
// store/postgres: timestamps are fixed-width UTC text).
const dbNow = `(to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '000Z')`

// scalar reads one integer, waiting through database hiccups (deadline).
func (c *haCluster) scalar(q string, args ...any) int {
	c.t.Helper()
	deadline := patient(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		var n int
		err := c.db.QueryRowContext(ctx, q, args...).Scan(&n)
		cancel()
		if err == nil {
			return n
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("query %q: %v", q, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitFor waits for cond with a deadline.
func (c *haCluster) waitFor(what string, within time.Duration, cond func() bool) {
	c.t.Helper()
	deadline := patient(within)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out after %s waiting for %s", within*deadlineScale, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitSettled waits until every key has a current credential, no rotation
// is active and every notification is delivered.
func (c *haCluster) waitSettled(within time.Duration) {
	c.t.Helper()
	c.waitFor("every key bootstrapped and no rotation active", within, func() bool {
		return c.scalar(`SELECT COUNT(*) FROM credentials WHERE state = 'current'`) == len(c.keys) &&
			c.scalar(`SELECT COUNT(*) FROM rotations WHERE finished = 0`) == 0
	})
	c.waitFor("the outbox delivered", within, func() bool {
		return c.scalar(`SELECT COUNT(*) FROM outbox WHERE delivered_at = '' AND failed = 0`) == 0
	})
}

// holders maps each member id holding an unexpired rotation lease to the
// rotations it holds and their versions; pids maps member ids to pids.
func (c *haCluster) holders() (map[string]map[string]int, map[int]string) {
	held, pids := map[string]map[string]int{}, map[int]string{}
	rows, err := c.db.Query(`SELECT lease_owner, id, version FROM rotations WHERE finished = 0 AND lease_owner <> '' AND lease_until > ` + dbNow)
	if err != nil {
		return held, pids
	}
	for rows.Next() {
		var owner, id string
		var v int
		if rows.Scan(&owner, &id, &v) == nil {
			if held[owner] == nil {
				held[owner] = map[string]int{}
			}
			held[owner][id] = v
		}
	}
	rows.Close()
	rows, err = c.db.Query(`SELECT id, pid FROM members`)
	if err != nil {
		return held, pids
	}
	for rows.Next() {
		var id string
		var pid int
		if rows.Scan(&id, &pid) == nil {
			pids[pid] = id
		}
	}
	rows.Close()
	return held, pids
}

// takeover waits until rotation id, held by owner when it was killed at
// since, is claimed by another daemon (or finished), and returns how long
// that took; false past the deadline.
func (c *haCluster) takeover(id, owner string, since time.Time, within time.Duration) (time.Duration, bool) {
	deadline := since.Add(within)
	for time.Now().Before(deadline) {
		var now string
		var finished int
		err := c.db.QueryRow(`SELECT lease_owner, finished FROM rotations WHERE id = $1`, id).Scan(&now, &finished)
		if err == nil && (finished == 1 || now != "" && now != owner) {
			return time.Since(since), true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return 0, false
}

// checkInvariants checks the end state once settled: every rotation done
// and none overlapping another of its key; for each key one live
// credential at the issuer, the one rekey records as current and every
// sink holds; no name minted live twice; every notification delivered to
// each notifier, the same events to both; the audit chain intact.
func (c *haCluster) checkInvariants() (rotations int) {
	t := c.t
	t.Helper()
	type rot struct {
		id, key, phase, created, finished string
	}
	rows, err := c.db.Query(`SELECT id, key, phase, created_at, finished_at FROM rotations ORDER BY key, created_at`)
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string][]rot{}
	for rows.Next() {
		var r rot
		if err := rows.Scan(&r.id, &r.key, &r.phase, &r.created, &r.finished); err != nil {
			t.Fatal(err)
		}
		byKey[r.key] = append(byKey[r.key], r)
		rotations++
		if r.phase != string(rotator.PhaseDone) {
			t.Errorf("rotation %s of %s ended %s", r.id, r.key, r.phase)
		}
	}
	rows.Close()
	for key, rs := range byKey {
		for i := 1; i < len(rs); i++ {
			if rs[i].created < rs[i-1].finished {
				t.Errorf("key %s: rotation %s started at %s, before %s finished at %s", key, rs[i].id, rs[i].created, rs[i-1].id, rs[i-1].finished)
			}
		}
	}
	names := map[string]int{}
	for _, k := range c.ka.Keys() {
		if k.Status == kubeadapt.StatusActive {
			names[k.Name]++
		}
	}
	for name, n := range names {
		if n > 1 {
			t.Errorf("issuer: %d live keys named %s", n, name)
		}
	}
	for _, key := range c.keys {
		var issuerID, fp string
		if err := c.db.QueryRow(`SELECT issuer_id, fingerprint FROM credentials WHERE key = $1 AND state = 'current'`, key).Scan(&issuerID, &fp); err != nil {
			t.Errorf("key %s: current credential: %v", key, err)
			continue
		}
		active, _ := kaKeysNamed(c.ka, key+"-v", true)
		if len(active) != 1 || active[0].ID != issuerID {
			t.Errorf("key %s: issuer's live keys %+v, rekey's current is %s", key, active, issuerID)
		}
		var doc sinkDoc
		b, err := os.ReadFile(filepath.Join(c.dir, "secrets", key+".json"))
		if err == nil {
			err = json.Unmarshal(b, &doc)
		}
		if err != nil || doc.Current == nil || doc.Pending != nil || rotator.Fingerprint(doc.Current.Value) != fp {
			t.Errorf("key %s: sink %+v (%v) does not hold the current credential alone", key, doc, err)
			continue
		}
		addSecret(doc.Current.Value)
		if st := haDataStatus(t, c.kaURL, doc.Current.Value); st != http.StatusOK {
			t.Errorf("key %s: the sink's key gets %d at the issuer", key, st)
		}
	}
	events := [2]map[string]bool{}
	for i, h := range c.hooks {
		name := fmt.Sprintf("hook%d", i+1)
		events[i] = map[string]bool{}
		rows, err := c.db.Query(`SELECT id, delivered_at FROM outbox WHERE notifier = $1`, name)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id, at string
			if err := rows.Scan(&id, &at); err != nil {
				t.Fatal(err)
			}
			events[i][strings.TrimPrefix(id, name+"/")] = true
			if at == "" {
				t.Errorf("%s: %s not delivered", name, id)
			}
		}
		rows.Close()
		got, bad := h.snapshot()
		if bad > 0 {
			t.Errorf("%s: %d deliveries with a bad signature", name, bad)
		}
		for id := range events[i] {
			if got[id] == 0 {
				t.Errorf("%s: event %s queued but never received", name, id)
			}
		}
		for id := range got {
			if !events[i][id] {
				t.Errorf("%s: received %s, which was never queued", name, id)
			}
		}
	}
	for id := range events[0] {
		if !events[1][id] {
			t.Errorf("event %s went to hook1 but not hook2", id)
		}
	}
	if len(events[0]) != len(events[1]) {
		t.Errorf("hook1 has %d events, hook2 %d", len(events[0]), len(events[1]))
	}
	cmd := exec.Command(binary, "audit", "verify", "-c", c.cfgs[0])
	cmd.Env = append(os.Environ(), "REKEY_HA_DSN="+c.dsn)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("audit verify: %v\n%s", err, out)
	}
	return rotations
}

// redelivered counts deliveries of one event id beyond the first (a kill
// between the receiver's answer and the daemon's record of it); the
// receiver de-duplicates them on webhook-id.
func (c *haCluster) redelivered() int {
	n := 0
	for _, h := range c.hooks {
		got, _ := h.snapshot()
		for _, k := range got {
			n += k - 1
		}
	}
	return n
}

func haDataStatus(t *testing.T, base, secret string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/v1/clusters", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// percentile of sorted durations (nearest rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
