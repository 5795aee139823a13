package app

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/store/sqlite"
	"github.com/rekeyhq/rekey/testing/kubeadapt"
)

// A daemon whose issuer refuses its credential is not ready — /readyz
// answers 503 and names the failing check — and does not start
// bootstrapping blindly; once the issuer answers, it becomes ready and the
// engine bootstraps the key.
func TestIssuerDownMeansNotReadyAndNoBootstrap(t *testing.T) {
	old := retryEvery
	retryEvery = 50 * time.Millisecond
	t.Cleanup(func() { retryEvery = old })
	dir := t.TempDir()
	ka := kubeadapt.New(kubeadapt.Options{AdminToken: "ka-admin-ready-0001"})
	if err := ka.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ka.Close() })
	tokenFile := filepath.Join(dir, "ka-token")
	if err := os.WriteFile(tokenFile, []byte("ka-admin-wrong"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "rekey.yaml")
	cfg := fmt.Sprintf(`
daemon: {listen: "127.0.0.1:0", admin_listen: "127.0.0.1:0", poll_interval: 50ms, retry_base: 50ms, retry_max: 200ms}
store: {type: sqlite, path: %[1]s/rekey.db}
issuers:
  - name: kubeadapt
    type: http
    base_url: %[2]s
    auth: {prefix: "Bearer ", token_file: %[3]s}
    mint: {path: /admin/v1/api-keys, body: '{"name": {{json .Name}}, "scopes": ["clusters:read"]}', success: [201], id_path: id, secret_path: secret}
    revoke: {method: DELETE, path: '/admin/v1/api-keys/{{pathescape .ID}}', success: [204], already_revoked: [409]}
    list: {path: '/admin/v1/api-keys?name={{urlquery .Name}}', items_path: data, id_path: id, name_path: name, status_path: status, revoked_statuses: [revoked]}
sinks: [{name: files, type: file, dir: %[1]s/secrets}]
notifiers: [{name: log, type: log}]
keys: [{name: api, issuer: kubeadapt, owners: [alice@example.com], sinks: [{sink: files}]}]
`, dir, ka.URL(), tokenFile)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, logs, stop := runDaemon(t, cfgPath)
	readyz := func() (int, readyView) {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v readyView
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, v
	}
	// Several rounds of checks fail; nothing is minted meanwhile.
	var first string
	deadline := time.Now().Add(30 * time.Second)
	for rounds := 0; rounds < 3; {
		if time.Now().After(deadline) {
			t.Fatalf("readiness never checked three times\n%s", logs)
		}
		code, v := readyz()
		if v.CheckedAt == "" || v.CheckedAt == first {
			continue
		}
		first = v.CheckedAt
		rounds++
		failing := false
		for _, c := range v.Checks {
			if c.Name == "issuer kubeadapt" && !c.OK {
				failing = true
			}
			if c.Detail != "" {
				t.Errorf("the public /readyz shows a check's detail: %+v", c)
			}
		}
		if code != http.StatusServiceUnavailable || v.Status != "not ready" || !failing {
			t.Fatalf("issuer refused: /readyz %d %+v", code, v)
		}
	}
	if n := len(ka.Keys()); n != 0 {
		t.Fatalf("%d keys minted while the issuer was failing its check", n)
	}
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "rekey.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if rs, err := st.ListRotations(t.Context(), rotator.RotationFilter{}); err != nil || len(rs) != 0 {
		t.Fatalf("rotations started before the dependencies answered: %d (%v)", len(rs), err)
	}
	// The credential is fixed: ready, and the key is bootstrapped.
	if err := os.WriteFile(tokenFile, []byte("ka-admin-ready-0001"), 0o600); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		code, _ := readyz()
		if code == http.StatusOK && len(ka.Keys()) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready or not bootstrapped after the fix: /readyz %d, %d keys\n%s", code, len(ka.Keys()), logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// /readyz lists every check; on the admin listener a principal who may
// read also gets each failure's detail and fix (they name hosts and
// configuration); a probe without credentials, the public listener and a
// bad token only the names — and the bad token counts as a failed
// authentication.
func TestReadyzDetailOnAdminOnly(t *testing.T) {
	cfg := loadExample(t)
	dir := t.TempDir()
	cfg.Store.Path = filepath.Join(dir, "rekey.db")
	for i := range cfg.Sinks {
		if cfg.Sinks[i].Type == "file" {
			cfg.Sinks[i].Settings["dir"] = filepath.Join(dir, "keys")
		}
	}
	token := rand.Text() + rand.Text()
	t.Setenv("REKEY_TEST_READYZ_ADMIN", token)
	cfg.Daemon.AdminTokenEnv = "REKEY_TEST_READYZ_ADMIN"
	d, err := Build(t.Context(), cfg, NewLogger(io.Discard, "error"), BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.readiness = newReadiness()
	d.readiness.results = []CheckResult{{Kind: "issuer", Name: "issuer demo", OK: false, Detail: "dial tcp: connection refused", Fix: "check issuers[0]"},
		{Kind: "sink", Name: "sink local", OK: true, Detail: "readable"}}
	d.readiness.at = time.Now()
	for name, tc := range map[string]struct {
		h      http.Handler
		bearer string
		detail bool
	}{
		"public":                  {d.PublicHandler(), token, false},
		"admin, no credential":    {d.AdminHandler(), "", false},
		"admin, bad token":        {d.AdminHandler(), "rk_" + strings.Repeat("x", 40), false},
		"admin, a reader's token": {d.AdminHandler(), token, true},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/readyz", nil)
		if tc.bearer != "" {
			req.Header.Set("Authorization", "Bearer "+tc.bearer)
		}
		tc.h.ServeHTTP(rec, req)
		var v readyView
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
			t.Fatal(err)
		}
		if rec.Code != http.StatusServiceUnavailable || v.Status != "not ready" || len(v.Checks) != 2 || v.Checks[0].Name != "issuer demo" || v.Checks[0].OK {
			t.Fatalf("%s: %d %+v", name, rec.Code, v)
		}
		if got := v.Checks[0].Detail != "" && v.Checks[0].Fix != ""; got != tc.detail {
			t.Errorf("%s: detail shown %v, want %v: %+v", name, got, tc.detail, v.Checks[0])
		}
	}
	// Bad tokens on /readyz count like any failed authentication: the
	// address is throttled, /readyz is no free oracle for guessing them.
	for range 100 {
		req := httptest.NewRequest("GET", "/readyz", nil)
		req.Header.Set("Authorization", "Bearer rk_"+strings.Repeat("y", 40))
		rec := httptest.NewRecorder()
		d.AdminHandler().ServeHTTP(rec, req)
		if rec.Code == http.StatusTooManyRequests {
			return
		}
	}
	t.Fatal("100 bad tokens on /readyz were never throttled")
}
