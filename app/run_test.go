package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/rekeyhq/rekey/store/sqlite"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the daemon's logger and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// runDaemon runs the daemon of cfgPath in this process until stop, which
// reports Run's error. It returns once the daemon accepts, with the bound
// public address and its logs.
func runDaemon(t *testing.T, cfgPath string) (addr string, logs *syncBuffer, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	logs = &syncBuffer{}
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- Run(ctx, Options{ConfigPath: cfgPath, Logs: logs, Ready: ready}) }()
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("daemon exited: %v\n%s", err, logs)
	case <-time.After(time.Minute):
		t.Fatalf("daemon not ready after a minute\n%s", logs)
	}
	return addr, logs, func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(time.Minute):
			t.Fatal("daemon did not stop")
			return nil
		}
	}
}

// With port 0 the daemon binds a free port, writes it to the address file
// once it accepts, logs it, and removes the file when it stops.
func TestRunOnPortZeroReportsTheBoundAddress(t *testing.T) {
	dir := t.TempDir()
	addrFile := filepath.Join(dir, "run", "rekey.addr")
	if err := os.Mkdir(filepath.Dir(addrFile), 0o755); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "rekey.yaml")
	cfg := fmt.Sprintf(`
daemon: {listen: "127.0.0.1:0", address_file: %q, admin_listen: "127.0.0.1:0"}
store: {type: sqlite, path: %q}
issuers: [{name: demo, type: random, ledger: %q}]
sinks: [{name: files, type: file, dir: %q}]
notifiers: [{name: log, type: log}]
keys: [{name: api, issuer: demo, owners: [alice@example.com], sinks: [{sink: files}]}]
`, addrFile, filepath.Join(dir, "rekey.db"), filepath.Join(dir, "ledger.json"), filepath.Join(dir, "secrets"))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, logs, stop := runDaemon(t, cfgPath)
	if strings.HasSuffix(addr, ":0") {
		t.Fatalf("ready address %q is not the bound one", addr)
	}
	b, err := os.ReadFile(addrFile)
	if err != nil {
		t.Fatalf("address file: %v", err)
	}
	if got := strings.TrimSpace(string(b)); got != addr {
		t.Fatalf("address file holds %q, want %q", got, addr)
	}
	if tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(addrFile), ".*")); len(tmps) > 0 {
		t.Errorf("temporary files left beside the address file: %v", tmps)
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %s", resp.Status)
	}
	started := false
	for line := range strings.Lines(logs.String()) {
		var rec struct {
			Msg    string `json:"msg"`
			Listen string `json:"listen"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "rekey started" {
			started = true
			if rec.Listen != addr {
				t.Errorf(`"rekey started" logs listen=%q, want the bound %q`, rec.Listen, addr)
			}
		}
	}
	if !started {
		t.Errorf(`no "rekey started" line in:\n%s`, logs)
	}
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "rekey.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if m, err := st.Members(t.Context()); err == nil && len(m) == 1 && m[0].Alive {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the daemon never appeared in the cluster view")
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
	if _, err := os.Stat(addrFile); !os.IsNotExist(err) {
		t.Errorf("address file still there after stop: %v", err)
	}
	// A clean stop leaves the cluster view before the store is closed.
	if strings.Contains(logs.String(), "leave the cluster view") || strings.Contains(logs.String(), "database is closed") {
		t.Errorf("the stop raced the store's close:\n%s", logs)
	}
	members, err := st.Members(t.Context())
	if err != nil || len(members) != 1 || !members[0].Left {
		t.Errorf("after a clean stop the cluster view has %+v (%v), want the daemon left", members, err)
	}
}

// Every process gets its own instance id: two clones with the same host
// name and listen address never share a lease.
func TestInstanceIDUniquePerProcess(t *testing.T) {
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	a, b := InstanceID(), InstanceID()
	if a == b || !strings.HasPrefix(a, host+"/") || len(a) < len(host)+1+12 {
		t.Fatalf("instance ids %q and %q: want unique, host first", a, b)
	}
}
