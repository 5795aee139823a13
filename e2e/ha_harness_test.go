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
	"github.com/rekeyhq/rekey/testing/kubeadapt"
)

// The high-availability harness: several rekey processes (the real binary)
// sharing one PostgreSQL database, the Kubeadapt-style server as their
// issuer with idempotency keys on (one shared server, so that a duplicate
// mint shows), the file sink,
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
	// Mints carry an idempotency key: a mint whose answer a kill lost is
	// asked again and replayed, so no name is ever created twice.
	issuer := idempotentIssuer(t, exampleHTTPIssuer(t, hs.URL, filepath.Join(c.dir, kaTokenFile)))
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
				var keep []string
				for _, line := range strings.Split(string(b), "\n") {
					if strings.Contains(line, `"level":"WARN"`) || strings.Contains(line, `"level":"ERROR"`) {
						keep = append(keep, line)
					}
				}
				if len(keep) > 40 {
					keep = keep[len(keep)-40:]
				}
				t.Logf("--- %s (warnings and errors) ---\n%s", l, strings.Join(keep, "\n"))
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
					c.mu.Lock()
					c.daemons[i] = d // others see it once it serves
					c.mu.Unlock()
					return d
				}
			}
		}
		if !d.alive() {
			b, _ := os.ReadFile(logPath)
			c.t.Fatalf("daemon %d exited during start-up\n%s", i, b)
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-d.done
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
	c.t.Cleanup(func() {
		if c.t.Failed() {
			c.dumpActive()
		}
	})
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

// dumpActive logs the unfinished rotations and the members, for a failure.
func (c *haCluster) dumpActive() {
	rows, err := c.db.Query(`SELECT id, key, phase, hold, hold_detail, attempts, last_error, next_attempt_at, lease_owner, lease_until, lease_epoch, version,
		` + dbNow + ` FROM rotations WHERE finished = 0`)
	if err != nil {
		c.t.Logf("dump: %v", err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var id, key, phase, hold, detail, lastErr, next, owner, until, now string
		var attempts, epoch, version int
		if err := rows.Scan(&id, &key, &phase, &hold, &detail, &attempts, &lastErr, &next, &owner, &until, &epoch, &version, &now); err != nil {
			c.t.Logf("dump: %v", err)
			return
		}
		c.t.Logf("active: %s %s phase=%s hold=%s (%s) attempts=%d last_error=%q next=%s lease=%s until=%s epoch=%d version=%d db_now=%s",
			id, key, phase, hold, detail, attempts, lastErr, next, owner, until, epoch, version, now)
	}
	crows, err := c.db.Query(`SELECT key, generation, state, rotation_id FROM credentials WHERE key IN
		(SELECT key FROM credentials GROUP BY key HAVING SUM(CASE WHEN state = 'current' THEN 1 ELSE 0 END) <> 1) ORDER BY key, generation`)
	if err == nil {
		for crows.Next() {
			var key, state, rot string
			var gen int
			if crows.Scan(&key, &gen, &state, &rot) == nil {
				c.t.Logf("credential of a key without exactly one current: %s gen %d %s (rotation %s)", key, gen, state, rot)
			}
		}
		crows.Close()
	}
	mrows, err := c.db.Query(`SELECT id, pid, heartbeat_at, expires_at, left_at FROM members ORDER BY started_at`)
	if err != nil {
		return
	}
	defer mrows.Close()
	for mrows.Next() {
		var id, hb, exp, left string
		var pid int
		if mrows.Scan(&id, &pid, &hb, &exp, &left) == nil {
			c.t.Logf("member: %s pid=%d heartbeat=%s expires=%s left=%s", id, pid, hb, exp, left)
		}
	}
}
