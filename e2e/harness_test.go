package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/rekeyhq/rekey/issuers/random"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rekey-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "rekey")
	out, err := exec.Command("go", "build", "-o", binary, "../cmd/rekey").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build rekey: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const webhookSecret = "e2e-webhook-signing-secret"
const adminToken = "e2e0c3f5b8e9a7d2c1b4e6f8a0d2c4b6e8f1a3c5e7d9b0f2a4c6e8d0b2f4a6c8e0d"

// world is one test's directory, configuration, receivers and collected
// output, shared by every daemon process the test starts.
type world struct {
	t        *testing.T
	dir      string
	cfg      string
	hook     *httptest.Server
	mu       sync.Mutex
	addr     string // the running (or last) daemon's bound address
	admin    string // and its admin listener's
	hookBods [][]byte
	hookBad  int
	// hookCut counts, by webhook-id, deliveries whose body ended early (the
	// sender was killed mid-request); hookGood holds the ids delivered whole
	// and correctly signed. A cut delivery must be delivered again later.
	hookCut  map[string]int
	hookGood map[string]bool
	outputs  bytes.Buffer // everything the CLI and admin API answered
	logs     []string     // daemon log files
}

type params struct {
	Dir, Hook                   string
	MaxAge, Quiet, Watch, Sched string
	Keys                        []string
	Approval                    bool
}

const cfgTemplate = `
daemon:
  listen: 127.0.0.1:0
  address_file: {{.Dir}}/rekey.addr
  admin_listen: 127.0.0.1:0
  admin_address_file: {{.Dir}}/rekey.admin.addr
  admin_token_file: {{.Dir}}/admin-token
  schedule: "{{.Sched}}"
  poll_interval: 100ms
  lease_ttl: 2s # a restarted daemon (a new instance) resumes its rotations after the lease runs out
  retry_base: 100ms
  retry_max: 1s
  log_level: debug
store:
  type: sqlite
  path: {{.Dir}}/rekey.db
issuers:
  - name: demo
    type: random
    ledger: {{.Dir}}/ledger.json
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
  policies:
    max_age: {{.MaxAge}}
  verify: true
  drain:
    source: fixed
    quiet_period: {{.Quiet}}
    max_wait: 1h
    poll_interval: 100ms
  watch:
    period: {{.Watch}}
    poll_interval: 100ms
{{- if .Approval}}
  approval:
    gates: [start]
    approvers: [bob, carol]
{{- end}}
keys:
{{- range .Keys}}
  - name: {{.}}
    issuer: demo
    owners: [alice@example.com]
    params:
      scopes: [clusters:read]
    sinks:
      - sink: files
{{- end}}
`

func newWorld(t *testing.T, p params) *world {
	t.Helper()
	if p.MaxAge == "" {
		p.MaxAge = "90d"
	}
	if p.Quiet == "" {
		p.Quiet = "0s"
	}
	if p.Watch == "" {
		p.Watch = "0s"
	}
	if p.Sched == "" {
		p.Sched = "@every 1h"
	}
	if len(p.Keys) == 0 {
		p.Keys = []string{"api"}
	}
	return newWorldFrom(t, cfgTemplate, func(w *world) any {
		p.Dir, p.Hook = w.dir, w.hook.URL
		return p
	})
}

// newWorldFrom makes a world whose configuration is tmpl (text/template)
// executed over what data returns; data sees the world's Dir and the
// webhook receiver's URL, and may add anything (server addresses…). The
// template must make the daemon listen on 127.0.0.1:0 and write its address
// to AddressFile (no port is picked in advance: another process could take
// it before the daemon binds it). The files admin-token and webhook-secret
// are written beside it.
func newWorldFrom(t *testing.T, tmpl string, data func(w *world) any) *world {
	t.Helper()
	w := &world{t: t, dir: t.TempDir(), hookCut: map[string]int{}, hookGood: map[string]bool{}}
	w.hook = httptest.NewServer(http.HandlerFunc(w.receive))
	t.Cleanup(w.hook.Close)
	var b bytes.Buffer
	if err := template.Must(template.New("cfg").Parse(tmpl)).Execute(&b, data(w)); err != nil {
		t.Fatal(err)
	}
	w.cfg = filepath.Join(w.dir, "rekey.yaml")
	if !strings.Contains(b.String(), w.AddressFile()) {
		t.Fatalf("the configuration does not write the daemon's address to %s", w.AddressFile())
	}
	for name, content := range map[string]string{"rekey.yaml": b.String(), "admin-token": adminToken, "webhook-secret": webhookSecret} {
		if err := os.WriteFile(filepath.Join(w.dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// Dir, AddressFile and HookURL are for configuration templates.
func (w *world) Dir() string         { return w.dir }
func (w *world) AddressFile() string { return filepath.Join(w.dir, "rekey.addr") }
func (w *world) HookURL() string     { return w.hook.URL }

// adminAddressFile is where the daemon writes its admin listener's
// address (daemon.admin_address_file in every configuration).
func (w *world) adminAddressFile() string { return filepath.Join(w.dir, "rekey.admin.addr") }

// AdminAddr is the running daemon's admin listener address.
func (w *world) AdminAddr() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.admin
}

// Addr is the running daemon's address, as it wrote it to AddressFile.
func (w *world) Addr() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.addr
}

// addSecret registers a secret value for the scan (for sinks the scan
// cannot read itself, such as Vault or Secrets Manager).
func addSecret(v string) {
	if v != "" {
		secretsSeen.Store(v, struct{}{})
	}
}

// record keeps an answer for the secret scan (tests call the API from many
// goroutines).
func (w *world) record(b []byte) {
	w.mu.Lock()
	w.outputs.Write(b)
	w.mu.Unlock()
}

// output is everything recorded so far.
func (w *world) output() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.outputs.String()
}

// daemon is one running rekey process.
type daemon struct {
	w    *world
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  string
}

// startTimeout bounds a daemon's start-up: the race detector on a loaded
// two-core machine makes it much slower than on a developer's laptop.
const startTimeout = 60 * time.Second

// deadlineScale stretches every deadline of a wait for a condition. The
// durations the tests pass are what a quiet machine needs; a shared
// two-core machine running several test binaries with the race detector
// can be several times slower, and a wait ends as soon as its condition
// holds, so a longer deadline costs nothing but a slower failure. Windows
// over which something must NOT happen (holdsFor, "would anything
// re-mint") are not stretched: they are assertions, not deadlines.
const deadlineScale = 3

// patient returns the deadline of a wait of d for a condition.
func patient(d time.Duration) time.Time { return time.Now().Add(d * deadlineScale) }

// start runs `rekey run` with extra environment (e.g. a failpoint), waits
// for the address it writes to AddressFile, then for /healthz there.
func (w *world) start(env ...string) *daemon {
	w.t.Helper()
	logPath := filepath.Join(w.dir, fmt.Sprintf("daemon-%d.log", len(w.logs)))
	w.logs = append(w.logs, logPath)
	lf, err := os.Create(logPath)
	if err != nil {
		w.t.Fatal(err)
	}
	// A daemon killed with SIGKILL leaves its address files behind.
	for _, f := range []string{w.AddressFile(), w.adminAddressFile()} {
		if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
			w.t.Fatal(err)
		}
	}
	cmd := exec.Command(binary, "run", "-c", w.cfg)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	d := &daemon{w: w, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() { d.err = cmd.Wait(); lf.Close(); close(d.done) }()
	w.t.Cleanup(func() { d.stop() })
	deadline := time.Now().Add(startTimeout)
	var addr string
	for {
		if addr == "" {
			b, err := os.ReadFile(w.AddressFile())
			ab, aerr := os.ReadFile(w.adminAddressFile())
			if err == nil && aerr == nil {
				addr = strings.TrimSpace(string(b))
				w.mu.Lock()
				w.addr, w.admin = addr, strings.TrimSpace(string(ab))
				w.mu.Unlock()
			}
		}
		if addr != "" {
			// Alive and started: a daemon still waiting for its store
			// answers 200 with another status.
			resp, err := http.Get("http://" + addr + "/healthz")
			if err == nil {
				var h struct{ Status string }
				_ = json.NewDecoder(resp.Body).Decode(&h)
				resp.Body.Close()
				if resp.StatusCode == 200 && h.Status == "ok" {
					return d
				}
			}
		}
		select {
		case <-d.done:
			b, _ := os.ReadFile(logPath)
			w.t.Fatalf("daemon exited during start-up: %v\n%s", d.err, b)
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logPath)
			w.t.Fatalf("daemon did not become healthy in %s (address %q)\n%s", startTimeout, addr, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the daemon gracefully (SIGTERM) and waits. A running daemon is
// first given the time to deliver again what an earlier kill cut short.
func (d *daemon) stop() {
	select {
	case <-d.done:
		return
	default:
	}
	d.w.waitRedelivered(30 * time.Second)
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-d.done
	}
}

// killedBySIGKILL waits for the process to die and reports whether SIGKILL
// did it.
func (d *daemon) waitKilled(t *testing.T, within time.Duration) bool {
	t.Helper()
	select {
	case <-d.done:
	case <-time.After(within * deadlineScale):
		return false
	}
	st, ok := d.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && st.Signaled() && st.Signal() == syscall.SIGKILL
}

type rotationView struct {
	ID            string `json:"id"`
	Key           string `json:"key"`
	Phase         string `json:"phase"`
	Hold          string `json:"hold"`
	Trigger       string `json:"trigger"`
	Outcome       string `json:"outcome"`
	LastError     string `json:"last_error"`
	NewGeneration int    `json:"new_generation"`
}

// waitRotation polls the admin API until the rotation is terminal.
func (w *world) waitRotation(id string, within time.Duration) rotationView {
	w.t.Helper()
	deadline := patient(within)
	var got struct {
		Rotation rotationView `json:"rotation"`
	}
	for time.Now().Before(deadline) {
		w.api("GET", "/v1/rotations/"+id, nil, &got)
		switch got.Rotation.Phase {
		case "done", "failed", "cancelled", "denied", "expired":
			return got.Rotation
		}
		w.collectSecrets()
		time.Sleep(50 * time.Millisecond)
	}
	w.t.Fatalf("rotation %s not finished in %s: %+v", id, within, got.Rotation)
	return rotationView{}
}

// sinkDoc is the file sink's document.
type sinkDoc struct {
	ManagedBy string `json:"managed_by"`
	Current   *slot  `json:"current"`
	Pending   *slot  `json:"pending"`
	Previous  *slot  `json:"previous"`
}

type slot struct {
	Value       string `json:"value"`
	Generation  int    `json:"generation"`
	Fingerprint string `json:"fingerprint"`
}

func (w *world) sink(key string) sinkDoc {
	w.t.Helper()
	var d sinkDoc
	b, err := os.ReadFile(filepath.Join(w.dir, "secrets", key+".json"))
	if err != nil {
		w.t.Fatalf("read sink: %v", err)
	}
	if err := json.Unmarshal(b, &d); err != nil {
		w.t.Fatalf("sink is not JSON: %v", err)
	}
	return d
}

var secretsSeen sync.Map // secret value → struct{}, across the test binary

// collectSecrets remembers every value the sinks hold right now.
func (w *world) collectSecrets() {
	files, _ := filepath.Glob(filepath.Join(w.dir, "secrets", "*.json"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var d sinkDoc
		if json.Unmarshal(b, &d) != nil {
			continue
		}
		for _, s := range []*slot{d.Current, d.Pending, d.Previous} {
			if s != nil && s.Value != "" {
				secretsSeen.Store(s.Value, struct{}{})
			}
		}
	}
}

// ledgerEntry is one credential of the random issuer's ledger.
type ledgerEntry struct {
	ID, Key, Name, Fingerprint string
	RevokedAt                  string // "" while live
}

// ledger is the random issuer's ledger, read as the issuer reads it.
func (w *world) ledger() []ledgerEntry {
	w.t.Helper()
	entries, err := random.ReadLedger(filepath.Join(w.dir, "ledger.json"))
	if err != nil {
		w.t.Fatalf("ledger: %v", err)
	}
	out := make([]ledgerEntry, 0, len(entries))
	for _, e := range entries {
		c := ledgerEntry{ID: e.ID, Key: e.Key, Name: e.Name, Fingerprint: e.Fingerprint}
		if !e.RevokedAt.IsZero() {
			c.RevokedAt = e.RevokedAt.Format(time.RFC3339Nano)
		}
		out = append(out, c)
	}
	return out
}

// ctx is a test context.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}
