package oidclogin

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/testing/oidcprovider"
)

func startProvider(t *testing.T, o oidcprovider.Options) *oidcprovider.Provider {
	o.Users = []oidcprovider.User{{Username: "ana", Password: "pw", Email: "Ana@Example.com", EmailVerified: true, Groups: []string{"secops"}}}
	o.DeviceClients = []string{"rekey-cli"}
	return oidcprovider.Start(t, o)
}

var hc = &http.Client{Timeout: 10 * time.Second}

// login runs Login in the background and returns what it showed and its
// result once act (approve, deny, nothing) was done on the user code.
func login(t *testing.T, p *oidcprovider.Provider, s Settings, act func(code string)) (Prompt, *Entry, error) {
	t.Helper()
	var (
		mu     sync.Mutex
		shown  Prompt
		result = make(chan struct {
			e   *Entry
			err error
		}, 1)
	)
	n := len(p.UserCodes()) + 1 // before the login can ask for a code
	go func() {
		e, err := Login(t.Context(), hc, s, func(pr Prompt) { mu.Lock(); shown = pr; mu.Unlock() })
		result <- struct {
			e   *Entry
			err error
		}{e, err}
	}()
	code := p.WaitUserCode(t, n, time.Now().Add(30*time.Second))
	act(code)
	select {
	case r := <-result:
		mu.Lock()
		defer mu.Unlock()
		return shown, r.e, r.err
	case <-time.After(90 * time.Second):
		t.Fatal("the login did not end")
	}
	return Prompt{}, nil, nil
}

func TestDeviceLogin(t *testing.T) {
	p := startProvider(t, oidcprovider.Options{})
	s := Settings{Issuer: p.Issuer, ClientID: "rekey-cli"}

	t.Run("approved", func(t *testing.T) {
		pr, e, err := login(t, p, s, func(code string) { p.Approve(t, code, "ana") })
		if err != nil {
			t.Fatal(err)
		}
		if pr.UserCode == "" || !strings.HasPrefix(pr.VerificationURI, p.Issuer+"/device") || !strings.Contains(pr.VerificationURIComplete, pr.UserCode) {
			t.Errorf("prompt = %+v", pr)
		}
		if e.IDToken == "" || e.RefreshToken == "" || !e.Fresh(time.Now()) || e.Issuer != p.Issuer || e.ClientID != "rekey-cli" {
			t.Errorf("entry = %v", e)
		}
		if s := e.String(); strings.Contains(s, e.IDToken) || strings.Contains(s, e.RefreshToken) {
			t.Errorf("String shows a token: %s", s)
		}
	})
	t.Run("denied", func(t *testing.T) {
		_, e, err := login(t, p, s, func(code string) { p.Deny(t, code) })
		if !errors.Is(err, ErrDenied) || e != nil {
			t.Fatalf("got %v, %v; want ErrDenied", e, err)
		}
	})
	t.Run("unknown client", func(t *testing.T) {
		_, err := Login(t.Context(), hc, Settings{Issuer: p.Issuer, ClientID: "nobody"}, func(Prompt) { t.Error("a code was shown") })
		if err == nil || !strings.Contains(err.Error(), "device authorization") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestDeviceLoginCodeExpires(t *testing.T) {
	p := startProvider(t, oidcprovider.Options{CodeLifetime: 2 * time.Second})
	_, e, err := login(t, p, Settings{Issuer: p.Issuer, ClientID: "rekey-cli"}, func(string) {})
	if !errors.Is(err, ErrCodeExpired) || e != nil {
		t.Fatalf("got %v, %v; want ErrCodeExpired", e, err)
	}
}

func TestRefreshAnExpiredIDToken(t *testing.T) {
	p := startProvider(t, oidcprovider.Options{})
	p.SetIDTokenLifetime(time.Second)
	_, e, err := login(t, p, Settings{Issuer: p.Issuer, ClientID: "rekey-cli"}, func(code string) { p.Approve(t, code, "ana") })
	if err != nil {
		t.Fatal(err)
	}
	if e.Fresh(time.Now()) {
		t.Fatalf("a one-second ID token counts as fresh until %s", e.Expiry)
	}
	p.SetIDTokenLifetime(time.Hour)
	c := Cache{Path: filepath.Join(t.TempDir(), "rekey", "tokens.json")}
	if err := c.Put("127.0.0.1:1", e); err != nil {
		t.Fatal(err)
	}
	tok, ok, err := Token(t.Context(), hc, c, "http://127.0.0.1:1/", time.Now())
	if err != nil || !ok {
		t.Fatalf("Token: %v %v", ok, err)
	}
	if tok == e.IDToken || p.Refreshes() != 1 {
		t.Fatalf("not refreshed (refreshes %d)", p.Refreshes())
	}
	again, _ := c.Get("127.0.0.1:1")
	if again.IDToken != tok || again.RefreshToken == e.RefreshToken || !again.Fresh(time.Now()) {
		t.Errorf("the cache holds %v after the refresh", again)
	}
	// The old refresh token was rotated away: it renews nothing.
	if _, err := Refresh(t.Context(), hc, *e); !errors.Is(err, ErrLoginNeeded) {
		t.Errorf("a spent refresh token: %v, want ErrLoginNeeded", err)
	}
	if _, err := Refresh(t.Context(), hc, Entry{Settings: e.Settings, IDToken: e.IDToken}); !errors.Is(err, ErrLoginNeeded) {
		t.Errorf("no refresh token: %v, want ErrLoginNeeded", err)
	}
}

func TestCache(t *testing.T) {
	c := Cache{Path: filepath.Join(t.TempDir(), "cfg", "rekey", "tokens.json")}
	a := &Entry{Settings: Settings{Issuer: "https://idp", ClientID: "c"}, IDToken: "a.b.c", Expiry: time.Now().Add(time.Hour)}
	b := &Entry{Settings: Settings{Issuer: "https://idp", ClientID: "c"}, IDToken: "d.e.f", Expiry: time.Now().Add(time.Hour)}
	if err := c.Put("http://127.0.0.1:8081", a); err != nil {
		t.Fatal(err)
	}
	if err := c.Put("https://rekey.internal", b); err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]string{"127.0.0.1:8081": "a.b.c", " http://127.0.0.1:8081/": "a.b.c", "https://rekey.internal": "d.e.f"} {
		if e, err := c.Get(addr); err != nil || e == nil || e.IDToken != want {
			t.Errorf("Get(%q) = %v, %v; want %s", addr, e, err, want)
		}
	}
	if e, err := c.Get("http://127.0.0.1:9999"); e != nil || err != nil {
		t.Errorf("another daemon's address: %v, %v", e, err)
	}
	for path, want := range map[string]os.FileMode{c.Path: 0o600, filepath.Dir(c.Path): 0o700} {
		if st, err := os.Stat(path); err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: %v %v, want mode %04o", path, st.Mode(), err, want)
		}
	}
	if ok, err := c.Delete("http://127.0.0.1:8081"); !ok || err != nil {
		t.Fatalf("Delete: %v %v", ok, err)
	}
	if e, _ := c.Get("http://127.0.0.1:8081"); e != nil {
		t.Error("the entry survived Delete")
	}
	if e, _ := c.Get("https://rekey.internal"); e == nil {
		t.Error("Delete removed another daemon's entry")
	}
	if err := os.Chmod(c.Path, 0o644); err != nil {
		t.Fatal(err)
	}
	if e, err := c.Get("https://rekey.internal"); !errors.Is(err, ErrInsecureCache) || e != nil {
		t.Fatalf("a 0644 cache: %v, %v; want ErrInsecureCache", e, err)
	}
	if _, _, err := Token(t.Context(), hc, c, "https://rekey.internal", time.Now()); !errors.Is(err, ErrInsecureCache) {
		t.Fatalf("Token from a 0644 cache: %v", err)
	}
	if ok, err := c.Delete("http://127.0.0.1:8081"); !ok || err != nil {
		t.Fatalf("Delete of an insecure cache: %v %v", ok, err)
	}
	if _, err := os.Stat(c.Path); !os.IsNotExist(err) {
		t.Errorf("the insecure cache file is still there: %v", err)
	}
}

func TestInsecureIssuerRefused(t *testing.T) {
	_, err := Login(t.Context(), hc, Settings{Issuer: "http://login.example.com", ClientID: "c"}, func(Prompt) {})
	if err == nil || !strings.Contains(err.Error(), "only https") {
		t.Fatalf("err = %v", err)
	}
}

func TestRevokeEndsTheRefreshToken(t *testing.T) {
	p := startProvider(t, oidcprovider.Options{})
	_, e, err := login(t, p, Settings{Issuer: p.Issuer, ClientID: "rekey-cli"}, func(code string) { p.Approve(t, code, "ana") })
	if err != nil {
		t.Fatal(err)
	}
	if err := Revoke(t.Context(), hc, *e); err != nil {
		t.Fatal(err)
	}
	if _, err := Refresh(t.Context(), hc, *e); !errors.Is(err, ErrLoginNeeded) {
		t.Fatalf("refresh after revocation: %v, want ErrLoginNeeded", err)
	}
}

// The client polls no faster than the provider asks: the interval it
// gives, five seconds more after each slow_down (RFC 8628 3.5).
func TestDeviceLoginHonoursSlowDown(t *testing.T) {
	p := startProvider(t, oidcprovider.Options{SlowDown: 1})
	issued := time.Now()
	_, e, err := login(t, p, Settings{Issuer: p.Issuer, ClientID: "rekey-cli"}, func(code string) { p.Approve(t, code, "ana") })
	if err != nil || e == nil {
		t.Fatal(err)
	}
	polls := p.Polls()
	if len(polls) != 2 {
		t.Fatalf("%d polls, want 2 (slow_down, then the token)", len(polls))
	}
	if first := polls[0].Sub(issued); first < 900*time.Millisecond {
		t.Errorf("first poll %s after the code, before the 1s interval", first)
	}
	if gap := polls[1].Sub(polls[0]); gap < 5900*time.Millisecond {
		t.Errorf("poll after slow_down came %s later, want at least the interval + 5s", gap)
	}
}
