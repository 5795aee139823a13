package e2e

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/internal/oidclogin"
	"github.com/rekeyhq/rekey/testing/oidcprovider"
)

// loginAuth gives the daemon a real OpenID Provider: ID tokens of the
// CLI's public client are accepted, members of secops approve.
const loginAuth = `auth:
  oidc:
    issuer: {{.Issuer}}
    audience: rekey
    cli_client_id: rekey-cli
    groups:
      - {group: secops, role: approver}
`

type loginParams struct {
	params
	Issuer string
}

// loginWorld is a started daemon whose auth.oidc is a provider started by
// the test, where ana (secops) and bob (no group) can sign in.
func loginWorld(t *testing.T) (*world, *oidcprovider.Provider) {
	p := oidcprovider.Start(t, oidcprovider.Options{
		Users: []oidcprovider.User{
			{Username: "ana", Password: "pw-ana", Email: "Ana@Example.com", EmailVerified: true, Groups: []string{"secops"}},
		},
		DeviceClients: []string{"rekey-cli"},
	})
	w := newWorldFrom(t, cfgTemplate+loginAuth, func(w *world) any {
		return loginParams{params: params{Dir: w.dir, Hook: w.hook.URL, MaxAge: "90d", Quiet: "0s", Watch: "0s",
			Sched: "@every 1h", Keys: []string{"api"}}, Issuer: p.Issuer}
	})
	w.start()
	w.bootstrap("api")
	return w, p
}

// person is a shell with nothing but PATH, HOME and REKEY_ADDR: no token.
func (w *world) person() *shell { return w.shell("REKEY_ADDR=http://" + w.AdminAddr()) }

// cacheFile is where the CLI caches logins in s (HOME/.config, as
// os.UserConfigDir gives it on Linux).
func (s *shell) cacheFile() string {
	for _, e := range s.env {
		if home, ok := strings.CutPrefix(e, "HOME="); ok {
			return filepath.Join(home, ".config", "rekey", "tokens.json")
		}
	}
	s.w.t.Fatal("the shell has no HOME")
	return ""
}

// lockedBuffer is written by a running command and read by the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// login runs `rekey login` in s; once the provider issued the user code
// and the CLI printed it, act plays the person in the browser.
func (s *shell) login(p *oidcprovider.Provider, act func(code string), flags ...string) (stdout, stderr string, code int) {
	t := s.w.t
	t.Helper()
	cmd := exec.Command(binary, append([]string{"login"}, flags...)...)
	var out, errb lockedBuffer
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = s.dir, s.env, &out, &errb
	n := len(p.UserCodes()) + 1 // before the login can ask for a code
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	userCode := p.WaitUserCode(t, n, patient(20*time.Second))
	for deadline := patient(10 * time.Second); !strings.Contains(errb.String(), userCode); {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("rekey login never printed the user code %s:\n%s", userCode, errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	act(userCode)
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Until(patient(30 * time.Second))):
		_ = cmd.Process.Kill()
		t.Fatalf("rekey login did not end after the person acted:\n%s", errb.String())
	}
	s.w.record([]byte(out.String() + errb.String()))
	return out.String(), errb.String(), code
}

func httpClient() *http.Client { return &http.Client{Timeout: 10 * time.Second} }

// neverShown fails the test if a token appears in any CLI output or
// daemon log.
func (w *world) neverShown(tokens ...string) {
	w.t.Helper()
	hay := w.output()
	for _, f := range w.logs {
		b, _ := os.ReadFile(f)
		hay += string(b)
	}
	for _, tok := range tokens {
		if tok != "" && strings.Contains(hay, tok) {
			w.t.Error("a login token appears in the CLI's output or the daemon's log")
		}
	}
}

// rekey login, approved in the browser: the person then works with no
// REKEY_TOKEN as their OIDC identity with the role of their group; a
// cache others can read is refused; rekey logout forgets the login.
func TestCLILoginDeviceCode(t *testing.T) {
	t.Parallel()
	w, p := loginWorld(t)
	s := w.person()
	out, errOut, code := s.login(p, func(c string) { p.Approve(t, c, "ana") })
	if code != 0 {
		t.Fatalf("rekey login: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{p.Issuer + "/device", "user_code=", "ana@example.com (via oidc)", "approver"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("rekey login's messages lack %q:\n%s", want, errOut)
		}
	}
	for path, mode := range map[string]os.FileMode{s.cacheFile(): 0o600, filepath.Dir(s.cacheFile()): 0o700} {
		if st, err := os.Stat(path); err != nil || st.Mode().Perm() != mode {
			t.Fatalf("%s: %v, want mode %04o", path, err, mode)
		}
	}
	e, err := oidclogin.Cache{Path: s.cacheFile()}.Get("http://" + w.AdminAddr())
	if err != nil || e == nil || e.IDToken == "" || e.RefreshToken == "" {
		t.Fatalf("the cache holds %v, %v", e, err)
	}

	if out := s.must("whoami"); !strings.Contains(out, "ana@example.com (via oidc)") || !strings.Contains(out, "roles: approver") {
		t.Errorf("whoami after login:\n%s", out)
	}
	if out := s.must("status"); !strings.Contains(out, "api") || !strings.Contains(out, "current") {
		t.Errorf("status after login:\n%s", out)
	}
	s.empty()
	// Another daemon's address gets nothing from this login.
	other := &shell{w: w, dir: s.dir, env: append(append([]string{}, s.env...), "REKEY_ADDR=http://127.0.0.1:1")}
	if _, errOut, code := other.rekey("", "whoami"); code != 2 || !strings.Contains(errOut, "rekey login") {
		t.Errorf("whoami against another address: exit %d, %s", code, errOut)
	}

	if err := os.Chmod(s.cacheFile(), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := s.rekey("", "whoami"); code != 2 || !strings.Contains(errOut, "mode 0644") || !strings.Contains(errOut, "others can read it") {
		t.Errorf("whoami with a 0644 cache: exit %d, want 2\n%s%s", code, out, errOut)
	}
	if err := os.Chmod(s.cacheFile(), 0o600); err != nil {
		t.Fatal(err)
	}
	s.must("whoami")

	if _, errOut, code := s.rekey("", "logout"); code != 0 || !strings.Contains(errOut, "Logged out") {
		t.Fatalf("logout: exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(s.cacheFile()); !os.IsNotExist(err) {
		t.Errorf("the cache file survived the logout of its only login: %v", err)
	}
	if _, err := oidclogin.Refresh(t.Context(), httpClient(), *e); !errors.Is(err, oidclogin.ErrLoginNeeded) {
		t.Errorf("the refresh token still works after logout: %v", err)
	}
	if _, errOut, code := s.rekey("", "whoami"); code != 2 || !strings.Contains(errOut, "rekey login") {
		t.Errorf("whoami after logout: exit %d, want 2 naming rekey login: %s", code, errOut)
	}
	w.neverShown(e.IDToken, e.RefreshToken)
}

// Denied in the browser: a clear error, exit 3, nothing cached.
func TestCLILoginDenied(t *testing.T) {
	t.Parallel()
	w, p := loginWorld(t)
	s := w.person()
	out, errOut, code := s.login(p, func(c string) { p.Deny(t, c) })
	if code != 3 || !strings.Contains(errOut, "denied") || !strings.Contains(errOut, "nothing was cached") {
		t.Fatalf("denied login: exit %d, want 3\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(s.cacheFile()); !os.IsNotExist(err) {
		t.Errorf("a denied login left %s: %v", s.cacheFile(), err)
	}
	if _, _, code := s.rekey("", "status"); code != 2 {
		t.Errorf("status after a denied login: exit %d, want 2", code)
	}
}

// A cached ID token that has expired is renewed with the refresh token
// without the person noticing; without a refresh token they are told to
// log in again.
func TestCLILoginRefreshesAnExpiredIDToken(t *testing.T) {
	t.Parallel()
	w, p := loginWorld(t)
	s := w.person()
	// The login the CLI would have cached, made with one-second ID tokens.
	p.SetIDTokenLifetime(time.Second)
	got := make(chan *oidclogin.Entry, 1)
	go func() {
		e, err := oidclogin.Login(t.Context(), httpClient(), oidclogin.Settings{Issuer: p.Issuer, ClientID: "rekey-cli"}, func(oidclogin.Prompt) {})
		if err != nil {
			t.Error(err)
		}
		got <- e
	}()
	p.Approve(t, p.WaitUserCode(t, 1, patient(20*time.Second)), "ana")
	old := <-got
	if old == nil {
		t.FailNow()
	}
	p.SetIDTokenLifetime(time.Hour)
	cache := oidclogin.Cache{Path: s.cacheFile()}
	if err := cache.Put("http://"+w.AdminAddr(), old); err != nil {
		t.Fatal(err)
	}
	for time.Now().Before(old.Expiry.Add(time.Second)) { // until the token has really expired
		time.Sleep(50 * time.Millisecond)
	}
	expired := w.shell("REKEY_ADDR=http://"+w.AdminAddr(), "REKEY_TOKEN="+old.IDToken)
	if _, _, code := expired.rekey("", "whoami"); code != 3 {
		t.Fatalf("the daemon took the expired ID token: exit %d, want 3", code)
	}

	if out := s.must("whoami"); !strings.Contains(out, "ana@example.com (via oidc)") {
		t.Fatalf("whoami with an expired cached token:\n%s", out)
	}
	if p.Refreshes() != 1 {
		t.Errorf("%d refreshes at the provider, want 1", p.Refreshes())
	}
	renewed, err := cache.Get("http://" + w.AdminAddr())
	if err != nil || renewed.IDToken == old.IDToken || renewed.RefreshToken == old.RefreshToken || !renewed.Fresh(time.Now()) {
		t.Fatalf("the cache after the refresh: %v, %v", renewed, err)
	}
	s.must("status")
	if p.Refreshes() != 1 {
		t.Errorf("the renewed token was refreshed again (%d refreshes)", p.Refreshes())
	}

	// Expired, and no refresh token: log in again.
	if err := cache.Put("http://"+w.AdminAddr(), &oidclogin.Entry{Settings: old.Settings, IDToken: old.IDToken, Expiry: old.Expiry}); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := s.rekey("", "whoami"); code != 2 || !strings.Contains(errOut, "run rekey login") {
		t.Errorf("expired without a refresh token: exit %d, want 2: %s", code, errOut)
	}
	w.neverShown(old.IDToken, old.RefreshToken, renewed.IDToken, renewed.RefreshToken)
}

// A daemon without auth.oidc: rekey login says so (exit 2); with the
// provider given by flags, a token the daemon does not accept is not
// cached (exit 3).
func TestCLILoginWithoutOIDCOnTheDaemon(t *testing.T) {
	t.Parallel()
	p := oidcprovider.Start(t, oidcprovider.Options{
		Users:         []oidcprovider.User{{Username: "ana", Password: "pw-ana", Email: "ana@example.com", EmailVerified: true}},
		DeviceClients: []string{"rekey-cli"},
	})
	w := newWorld(t, params{})
	w.start()
	s := w.person()
	if _, errOut, code := s.rekey("", "login"); code != 2 || !strings.Contains(errOut, "no OIDC login configured") {
		t.Fatalf("login against a daemon without auth.oidc: exit %d, want 2: %s", code, errOut)
	}
	out, errOut, code := s.login(p, func(c string) { p.Approve(t, c, "ana") }, "--issuer", p.Issuer, "--client-id", "rekey-cli")
	if code != 3 || !strings.Contains(errOut, "refused it (nothing was cached") {
		t.Fatalf("login the daemon cannot verify: exit %d, want 3\n%s%s", code, out, errOut)
	}
	// Nothing cached, so nothing would ever revoke it: revoked at once.
	if n := p.Revocations(); n != 1 {
		t.Errorf("after a login the daemon refused, %d tokens revoked at the provider, want its refresh token", n)
	}
	if _, err := os.Stat(s.cacheFile()); !os.IsNotExist(err) {
		t.Errorf("a token the daemon refused was cached: %v", err)
	}
	if _, errOut, code := w.shell().rekey("", "login"); code != 2 || !strings.Contains(errOut, "REKEY_ADDR") {
		t.Errorf("login without REKEY_ADDR: exit %d, want 2: %s", code, errOut)
	}
}
