package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/testing/testenv"
)

// get answers GET url with the bearer token: status and body.
func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitAddr reads an address file, waiting for it with a deadline.
func waitAddr(t *testing.T, path string) string {
	t.Helper()
	var addr string
	waitFor(t, "address file "+path, func() bool {
		b, err := os.ReadFile(path)
		addr = strings.TrimSpace(string(b))
		return err == nil && addr != ""
	})
	return addr
}

// A daemon whose PostgreSQL is down waits for it instead of exiting: it
// listens, is alive but not ready, and answers every admin request 503
// with a message that names no database, user or host. Once PostgreSQL is
// up it becomes ready by itself; when it goes down again, the admin API
// answers 503 again, without driver text.
func TestStartsAndServesThroughAStoreOutage(t *testing.T) {
	pg := testenv.NewPostgres(t)
	dsn := pg.CreateDatabase(t)
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	token := hex.EncodeToString(raw)
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("REKEY_TEST_DSN", dsn)
	cfgPath := filepath.Join(dir, "rekey.yaml")
	cfg := fmt.Sprintf(`
daemon: {listen: "127.0.0.1:0", address_file: %q, admin_listen: "127.0.0.1:0", admin_address_file: %q, admin_token_file: %q, lease_ttl: 2s}
store: {type: postgres, dsn_env: REKEY_TEST_DSN}
issuers: [{name: demo, type: random, ledger: %q}]
sinks: [{name: files, type: file, dir: %q}]
notifiers: [{name: log, type: log}]
keys: [{name: api, issuer: demo, owners: [alice@example.com], sinks: [{sink: files}]}]
`, filepath.Join(dir, "pub.addr"), filepath.Join(dir, "adm.addr"), filepath.Join(dir, "token"), filepath.Join(dir, "ledger.json"), filepath.Join(dir, "secrets"))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- Run(ctx, Options{ConfigPath: cfgPath, Logs: logs}) }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", logs)
		}
		cancel()
		select {
		case err := <-done:
			if t.Failed() {
				t.Logf("run: %v", err)
			}
		case <-time.After(time.Minute):
			t.Error("daemon did not stop")
		}
	})
	adm := "http://" + waitAddr(t, filepath.Join(dir, "adm.addr"))
	secretive := func(body string) {
		t.Helper()
		for _, leak := range []string{"postgres", "127.0.0.1", "5432", fmt.Sprint(pg.Port), "dial", "connect"} {
			if strings.Contains(strings.ToLower(body), leak) {
				t.Errorf("answer reveals %q: %s", leak, body)
			}
		}
	}
	if st, body := get(t, adm+"/healthz", ""); st != http.StatusOK {
		t.Errorf("healthz while waiting = %d %s, want 200", st, body)
	}
	for _, path := range []string{"/readyz", "/v1/keys", "/v1/cluster"} {
		st, body := get(t, adm+path, token)
		if st != http.StatusServiceUnavailable {
			t.Errorf("%s while waiting for the store = %d %s, want 503", path, st, body)
		}
		secretive(body)
	}
	select {
	case err := <-done:
		t.Fatalf("daemon exited while the store was down: %v\n%s", err, logs)
	default:
	}
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ready once the store is up", func() bool { st, _ := get(t, adm+"/readyz", ""); return st == http.StatusOK })
	var v ClusterView
	var body string
	waitFor(t, "this daemon in the cluster view", func() bool {
		var st int
		st, body = get(t, adm+"/v1/cluster", token)
		v = ClusterView{}
		return st == http.StatusOK && json.Unmarshal([]byte(body), &v) == nil && len(v.Members) > 0
	})
	if len(v.Members) != 1 || v.Members[0].ID != v.Self || v.Members[0].State != "alive" || v.LeaseTTL != 2 {
		t.Fatalf("cluster view = %s", body)
	}
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v1/keys", "/v1/rotations", "/v1/cluster", "/v1/audit"} {
		st, body := get(t, adm+path, token)
		if st != http.StatusServiceUnavailable {
			t.Errorf("%s during an outage = %d %s, want 503", path, st, body)
		}
		secretive(body)
	}
	// /readyz answers from a ping at most a second old.
	waitFor(t, "readyz 503 during the outage", func() bool { st, _ := get(t, adm+"/readyz", ""); return st == http.StatusServiceUnavailable })
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ready again", func() bool { st, _ := get(t, adm+"/readyz", ""); return st == http.StatusOK })
	if st, body := get(t, adm+"/v1/keys", token); st != http.StatusOK {
		t.Errorf("keys after the outage = %d %s", st, body)
	}
}
