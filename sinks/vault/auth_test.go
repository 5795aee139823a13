package vault

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/testing/testenv"
)

// rekeyPolicy is what the sink needs on a KV v2 mount named secret.
const rekeyPolicy = `
path "secret/data/*"     { capabilities = ["create", "read", "update", "delete"] }
path "secret/metadata/*" { capabilities = ["create", "read", "update", "delete"] }
`

// appRole enables AppRole on v with a role whose tokens live ttl and at most
// maxTTL, and returns its role id and a file holding a secret id.
func appRole(t *testing.T, v *testenv.VaultServer, ttl, maxTTL string) (roleID, secretIDFile string) {
	t.Helper()
	root := rootClient(t, v)
	if err := root.Sys().EnableAuthWithOptions("approle", &api.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().PutPolicy("rekey", rekeyPolicy); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Logical().Write("auth/approle/role/rekey", map[string]any{
		"token_policies": "rekey", "token_ttl": ttl, "token_max_ttl": maxTTL,
	}); err != nil {
		t.Fatal(err)
	}
	sec, err := root.Logical().Read("auth/approle/role/rekey/role-id")
	if err != nil {
		t.Fatal(err)
	}
	roleID = sec.Data["role_id"].(string)
	sec, err = root.Logical().Write("auth/approle/role/rekey/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	return roleID, tokenFile(t, sec.Data["secret_id"].(string))
}

// logBuffer collects a sink's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func appRoleConfig(t *testing.T, v *testenv.VaultServer, roleID, secretIDFile string) Config {
	cfg := DefaultConfig()
	cfg.Address = v.Addr
	cfg.Timeout = 5 * time.Second
	cfg.Auth = AuthConfig{Method: AuthAppRole, RoleID: roleID, SecretIDFile: secretIDFile}
	return cfg
}

// TestAppRoleRenewAndRelogin: the sink logs in with AppRole, renews its
// renewable token, logs in again when the token reaches its max TTL, and
// keeps working throughout.
func TestAppRoleRenewAndRelogin(t *testing.T) {
	v := testenv.Vault(t)
	roleID, sidFile := appRole(t, v, "2s", "5s")
	logs := &logBuffer{}
	s, err := New(appRoleConfig(t, v, roleID, sidFile), slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	tgt := rotator.Target{Key: "k", Path: "approle/k"}
	if err := s.Stage(ctx, tgt, delivery(1, "ka_live_one", "")); err != nil {
		t.Fatal(err)
	}
	if got := s.auth.logins.Load(); got != 1 {
		t.Fatalf("logins = %d, want 1", got)
	}
	self, err := s.client.Auth().Token().LookupSelf()
	if err != nil {
		t.Fatal(err)
	}
	if pol, _ := self.TokenPolicies(); !strings.Contains(strings.Join(pol, ","), "rekey") {
		t.Fatalf("the sink does not use its AppRole token: policies %v", pol)
	}

	deadline := time.Now().Add(30 * time.Second)
	for s.auth.logins.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no re-login 30s after a 5s max TTL; log:\n%s", logs)
		}
		time.Sleep(100 * time.Millisecond) // polling a counter, with a deadline
	}
	if !strings.Contains(logs.String(), "renewed the vault token") {
		t.Fatalf("the token was never renewed before its max TTL; log:\n%s", logs)
	}
	if err := rotate(ctx, s, tgt, delivery(2, "ka_live_two", "ka_live_one")); err != nil {
		t.Fatalf("rotation after re-login: %v", err)
	}
}

// TestAppRoleTokenRevoked: a login token revoked behind the sink's back
// (403) is replaced by a new login and the call succeeds.
func TestAppRoleTokenRevoked(t *testing.T) {
	v := testenv.Vault(t)
	roleID, sidFile := appRole(t, v, "1h", "2h")
	s := newSink(t, appRoleConfig(t, v, roleID, sidFile))
	ctx := context.Background()
	tgt := rotator.Target{Key: "k", Path: "approle/revoked"}
	if err := s.Stage(ctx, tgt, delivery(1, "ka_live_one", "")); err != nil {
		t.Fatal(err)
	}
	if err := rootClient(t, v).Auth().Token().RevokeTree(s.client.Token()); err != nil {
		t.Fatal(err)
	}
	if err := rotate(ctx, s, tgt, delivery(2, "ka_live_two", "ka_live_one")); err != nil {
		t.Fatalf("rotation after the token was revoked: %v", err)
	}
	if got := s.auth.logins.Load(); got != 2 {
		t.Fatalf("logins = %d, want 2", got)
	}
}

// TestAppRoleBadSecretID: a wrong secret id is a permanent failure whose
// text names the login path and never the secret id.
func TestAppRoleBadSecretID(t *testing.T) {
	v := testenv.Vault(t)
	roleID, _ := appRole(t, v, "1h", "2h")
	const wrong = "d1b9c53e-0000-4000-8000-000000000000"
	s := newSink(t, appRoleConfig(t, v, roleID, tokenFile(t, wrong)))
	err := s.Stage(context.Background(), rotator.Target{Key: "k"}, delivery(1, "ka_live_one", ""))
	switch {
	case err == nil:
		t.Fatal("Stage with a wrong secret id succeeded")
	case !rotator.IsPermanent(err):
		t.Fatalf("%v is retryable, want permanent", err)
	case strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), "ka_live_one"):
		t.Fatalf("error leaks a secret: %v", err)
	case !strings.Contains(err.Error(), "auth/approle/login"):
		t.Fatalf("error %q does not name the login path", err)
	}
}

// TestTokenFileReread: with token_file, a 403 makes the sink read the file
// again (an agent may have replaced the token); a token that is simply
// wrong is a permanent auth failure.
func TestTokenFileReread(t *testing.T) {
	v := testenv.Vault(t)
	root := rootClient(t, v)
	if err := root.Sys().PutPolicy("rekey", rekeyPolicy); err != nil {
		t.Fatal(err)
	}
	newToken := func() string {
		sec, err := root.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"rekey"}, TTL: "1h"})
		if err != nil {
			t.Fatal(err)
		}
		return sec.Auth.ClientToken
	}
	first := newToken()
	cfg := testConfig(t, v)
	cfg.Auth.TokenFile = tokenFile(t, first)
	s := newSink(t, cfg)
	ctx := context.Background()
	tgt := rotator.Target{Key: "k", Path: "tokenfile/k"}
	if err := s.Stage(ctx, tgt, delivery(1, "ka_live_one", "")); err != nil {
		t.Fatal(err)
	}
	if err := root.Auth().Token().RevokeTree(first); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.Auth.TokenFile, []byte(newToken()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := rotate(ctx, s, tgt, delivery(2, "ka_live_two", "ka_live_one")); err != nil {
		t.Fatalf("rotation after the token file changed: %v", err)
	}

	if err := os.WriteFile(cfg.Auth.TokenFile, []byte("hvs.not-a-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	s2 := newSink(t, cfg)
	_, err := s2.Inspect(ctx, tgt)
	if err == nil || !rotator.IsPermanent(err) || rotator.ReasonOf(err) != rotator.ReasonAuth || strings.Contains(err.Error(), "hvs.not-a-token") {
		t.Fatalf("Inspect with a bad token = %v, want a permanent auth error without the token", err)
	}
}

// TestKubernetesLoginBody covers the Kubernetes method's configuration and
// JWT reading only: a real login needs a Kubernetes API server for Vault's
// TokenReview, which cannot run on these machines.
func TestKubernetesLoginBody(t *testing.T) {
	jwt := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(jwt, []byte("eyJhbGciOi.payload.sig\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	if cfg.Auth.JWTFile != "/var/run/secrets/kubernetes.io/serviceaccount/token" {
		t.Fatalf("default jwt_file = %q", cfg.Auth.JWTFile)
	}
	a := newAuthenticator(AuthConfig{Method: AuthKubernetes, Role: "rekey", JWTFile: jwt}, "", nil, slog.New(slog.DiscardHandler))
	body, err := a.loginBody()
	if err != nil {
		t.Fatal(err)
	}
	if body["role"] != "rekey" || body["jwt"] != "eyJhbGciOi.payload.sig" {
		t.Fatalf("login body = %v", body)
	}
	if got := (AuthConfig{Method: AuthKubernetes}).mount(); got != "kubernetes" {
		t.Fatalf("default kubernetes mount = %q", got)
	}

	a.cfg.JWTFile = filepath.Join(t.TempDir(), "missing")
	_, err = a.loginBody()
	if err == nil || !rotator.IsPermanent(err) || !strings.Contains(err.Error(), a.cfg.JWTFile) {
		t.Fatalf("login body without a JWT file = %v, want a permanent error naming the file", err)
	}
}
