package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/auth"
	"github.com/rekeyhq/rekey/config"
	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/testing/pki"
)

// mtlsEnv is an authEnv whose admin handler is served over real TLS with
// client certificates verified against the bundle in caFile.
type mtlsEnv struct {
	*authEnv
	url      string
	serverCA *pki.CA
	caFile   string
}

const certsConfig = `
auth:
  identities: {"ana@corp.example": "bob@example.com"}
  certs:
    users:
      - {identity: Alice@Example.com, role: operator}
      - {identity: alice@example.com, role: approver}
      - {identity: bob@example.com, role: approver}
      - {pattern: "*@sre.example.com", role: viewer}
    groups:
      - {group: responders, role: responder}
`

func newMTLSEnv(t *testing.T, mode string, clientCA *pki.CA) *mtlsEnv {
	t.Helper()
	dir := t.TempDir()
	serverCA := pki.NewCA(t, "rekey server CA")
	certFile, keyFile := serverCA.Issue(t, pki.Leaf{CN: "rekey", Server: true}).Write(t, dir, "admin")
	caFile := filepath.Join(dir, "client-ca.pem")
	pki.WriteFile(t, caFile, clientCA.PEM)
	tlsCfg := config.TLS{CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile, ClientAuth: mode}
	e := newAuthEnvWith(t, certsConfig, func(c *config.Config) { c.Daemon.AdminTLS = tlsCfg })
	tc, err := tlsConfig(tlsCfg, "daemon.admin_tls")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", tc)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: e.d.AdminHandler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return &mtlsEnv{authEnv: e, url: "https://" + ln.Addr().String(), serverCA: serverCA, caFile: caFile}
}

// as calls the admin API over TLS presenting cert (none when nil) and, if
// set, a bearer token.
func (m *mtlsEnv) as(cert *pki.Pair, token, method, path string, body any) answer {
	m.t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(m.serverCA.Cert)
	tc := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if cert != nil {
		kp, err := tls.X509KeyPair(cert.CertPEM, cert.KeyPEM)
		if err != nil {
			m.t.Fatal(err)
		}
		tc.Certificates = []tls.Certificate{kp}
	}
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 30 * time.Second}
	defer cl.CloseIdleConnections()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, m.url+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := cl.Do(req)
	if err != nil {
		m.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, header: resp.Header}
	_ = json.NewDecoder(resp.Body).Decode(&a.body)
	return a
}

func roles(a answer) string {
	var out []string
	for _, r := range a.body["roles"].([]any) {
		out = append(out, r.(string))
	}
	return strings.Join(out, ",")
}

// A verified certificate authenticates the person its first email SAN
// names (canonical, through auth.identities), with the roles auth.certs
// gives that identity, its pattern and its Subject OU; what it does is
// recorded as theirs, via mtls, with the certificate's serial and
// fingerprint in the audit trail; the requester still cannot approve.
func TestMTLSCertificatePrincipal(t *testing.T) {
	ca := pki.NewCA(t, "people CA")
	m := newMTLSEnv(t, config.ClientAuthOptional, ca)
	alice := ca.Issue(t, pki.Leaf{CN: "Alice", Emails: []string{"Alice@Example.com", "other@example.com"}})
	ana := ca.Issue(t, pki.Leaf{Emails: []string{"ana@corp.example"}})
	sam := ca.Issue(t, pki.Leaf{Emails: []string{"sam@sre.example.com"}, OU: []string{"responders"}})

	for name, tc := range map[string]struct {
		cert      pki.Pair
		id, roles string
	}{
		"alice: canonical email SAN, two users entries": {alice, "alice@example.com", "operator,approver"},
		"ana: an auth.identities alias":                 {ana, "bob@example.com", "approver"},
		"sam: a pattern and a Subject OU":               {sam, "sam@sre.example.com", "viewer,responder"},
	} {
		a := m.as(&tc.cert, "", "GET", "/v1/whoami", nil)
		if a.status != http.StatusOK || a.body["id"] != tc.id || a.body["via"] != auth.ViaMTLS || roles(a) != tc.roles {
			t.Errorf("%s: whoami %d %v, want %s via mtls with %s", name, a.status, a.body, tc.id, tc.roles)
		}
		if a.body["cert_serial"] != tc.cert.Cert.SerialNumber.Text(16) {
			t.Errorf("%s: whoami cert_serial %v, want %s", name, a.body["cert_serial"], tc.cert.Cert.SerialNumber.Text(16))
		}
	}

	rot := m.as(&alice, "", "POST", "/v1/keys/api/rotate", map[string]string{"reason": "mtls"})
	if rot.status != http.StatusCreated {
		t.Fatalf("rotate with alice's certificate: %d %v", rot.status, rot.body)
	}
	id := rot.body["id"].(string)
	waitPhase(t, m.d, id, rotator.PhaseAwaitingApproval)
	if got, _ := m.d.Store.GetRotation(context.Background(), id); got.Actor != "alice@example.com" {
		t.Fatalf("recorded actor %q, want alice@example.com", got.Actor)
	}
	sum := sha256.Sum256(alice.Cert.Raw)
	evs, err := m.d.Store.Audit(context.Background(), rotator.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var recorded bool
	for _, ev := range evs {
		if ev.Action == "mtls.request" && ev.Actor == "alice@example.com" && ev.Detail["request"] == "POST /v1/keys/api/rotate" {
			recorded = ev.Detail["cert_sha256"] == hex.EncodeToString(sum[:]) && ev.Detail["cert_serial"] == alice.Cert.SerialNumber.Text(16) &&
				ev.Detail["via"] == auth.ViaMTLS
		}
		for _, v := range ev.Detail {
			if strings.Contains(v, "PRIVATE KEY") || strings.Contains(v, string(alice.KeyPEM)) {
				t.Errorf("audit event %s carries a private key", ev.Action)
			}
		}
	}
	if !recorded {
		t.Error("no mtls.request audit event with alice's certificate serial and SHA-256 before her rotation")
	}

	if a := m.as(&alice, "", "POST", "/v1/rotations/"+id+"/approve", nil); a.status != http.StatusForbidden {
		t.Errorf("alice approving her own rotation with her certificate: %d %v, want 403", a.status, a.body)
	}
	if a := m.as(&ana, "", "POST", "/v1/rotations/"+id+"/approve", nil); a.status != http.StatusOK {
		t.Fatalf("bob (ana's certificate) approving: %d %v", a.status, a.body)
	}
	// Optional mode: bearer credentials still work.
	carol := m.token("carol@example.com", auth.RoleApprover, "")
	if a := m.as(nil, carol, "POST", "/v1/rotations/"+id+"/approve", nil); a.status != http.StatusOK {
		t.Fatalf("carol approving with a token and no certificate: %d %v", a.status, a.body)
	}
	aps := m.approvals(id)
	if len(aps) != 2 || aps[0].Approver != "bob@example.com" || aps[0].Via != auth.ViaMTLS || aps[1].Via != "api" {
		t.Errorf("approvals %+v, want bob via mtls then carol via api", aps)
	}
}

// A certificate that does not verify, or names nobody rekey accepts, is a
// 401 — never a 500 — and each is counted against the address's budget of
// failed authentications, until it is answered 429.
func TestMTLSRefusesBadCertificates(t *testing.T) {
	ca := pki.NewCA(t, "people CA")
	m := newMTLSEnv(t, config.ClientAuthOptional, ca)
	other := pki.NewCA(t, "someone else's CA")
	// Each answer says why (the holder can act on it); the log has the
	// serial and fingerprint.
	for name, tc := range map[string]struct {
		cert pki.Pair
		why  string
	}{
		"another CA":         {other.Issue(t, pki.Leaf{Emails: []string{"alice@example.com"}}), "not signed by a CA this listener trusts"},
		"expired":            {ca.Issue(t, pki.Leaf{Emails: []string{"alice@example.com"}, NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Minute)}), "has expired"},
		"not yet valid":      {ca.Issue(t, pki.Leaf{Emails: []string{"alice@example.com"}, NotBefore: time.Now().Add(time.Hour), NotAfter: time.Now().Add(2 * time.Hour)}), "not valid yet"},
		"no email SAN":       {ca.Issue(t, pki.Leaf{CN: "alice@example.com"}), "names no identity"},
		"reserved identity":  {ca.Issue(t, pki.Leaf{Emails: []string{"Scheduler"}}), "reserved"},
		"a channel's form":   {ca.Issue(t, pki.Leaf{Emails: []string{"break-glass:root@host"}}), "reserved"},
		"the bootstrap name": {ca.Issue(t, pki.Leaf{Emails: []string{"Admin "}}), "reserved"},
	} {
		a := m.as(&tc.cert, "", "GET", "/v1/whoami", nil)
		if msg, _ := a.body["error"].(string); a.status != http.StatusUnauthorized || !strings.Contains(msg, tc.why) {
			t.Errorf("%s: %d %v, want 401 saying %q", name, a.status, a.body, tc.why)
		}
	}
	bad := other.Issue(t, pki.Leaf{Emails: []string{"alice@example.com"}})
	// Also where no person is asked for: a certificate presented must verify.
	if a := m.as(nil, "", "GET", "/readyz", nil); a.status == http.StatusUnauthorized {
		t.Errorf("/readyz without a certificate in optional mode: %d", a.status)
	}
	if a := m.as(&bad, "", "GET", "/readyz", nil); a.status != http.StatusUnauthorized {
		t.Errorf("/readyz with a certificate of another CA: %d, want 401", a.status)
	}
	throttled := false
	for range 10 {
		if a := m.as(&bad, "", "GET", "/v1/whoami", nil); a.status == http.StatusTooManyRequests {
			throttled = true
			break
		}
	}
	if !throttled {
		t.Fatal("failed certificate authentications were never throttled (429)")
	}
	good := ca.Issue(t, pki.Leaf{Emails: []string{"alice@example.com"}})
	if a := m.as(&good, "", "GET", "/v1/whoami", nil); a.status != http.StatusTooManyRequests {
		t.Errorf("a valid certificate from a throttled address: %d, want 429 before it is checked", a.status)
	}
}

// A certificate and a bearer token in one request must name one person:
// then the token's grants decide (never the union); otherwise, or with a
// certificate that does not verify, the request is refused.
func TestMTLSCertificateAndBearer(t *testing.T) {
	ca := pki.NewCA(t, "people CA")
	m := newMTLSEnv(t, config.ClientAuthOptional, ca)
	sam := ca.Issue(t, pki.Leaf{Emails: []string{"sam@sre.example.com"}}) // viewer by pattern
	samToken := m.token("Sam@SRE.example.com", auth.RoleOperator, "db")
	bobToken := m.token("bob@example.com", auth.RoleAdmin, "")

	a := m.as(&sam, samToken, "GET", "/v1/whoami", nil)
	if a.status != http.StatusOK || a.body["id"] != "sam@sre.example.com" || a.body["via"] != "token" || roles(a) != "operator keys=db" ||
		a.body["cert_serial"] != sam.Cert.SerialNumber.Text(16) {
		t.Errorf("sam's certificate with sam's token: %d %v, want the token's principal (operator keys=db) with the certificate recorded", a.status, a.body)
	}
	for name, tc := range map[string]struct {
		cert  pki.Pair
		token string
	}{
		"sam's certificate, bob's admin token":        {sam, bobToken},
		"sam's certificate, the bootstrap token":      {sam, testBootstrap},
		"a certificate of another CA, bob's token":    {pki.NewCA(t, "x").Issue(t, pki.Leaf{Emails: []string{"bob@example.com"}}), bobToken},
		"sam's certificate, a token that is no token": {sam, "rk_nope"},
	} {
		if a := m.as(&tc.cert, tc.token, "POST", "/v1/keys/db/rotate", map[string]string{"reason": "mix"}); a.status != http.StatusUnauthorized {
			t.Errorf("%s: %d %v, want 401", name, a.status, a.body)
		}
	}
	if rs, _ := m.d.Store.ListRotations(context.Background(), rotator.RotationFilter{Key: "db"}); len(rs) != 1 {
		t.Errorf("db has %d rotations, want only its bootstrap: a refused request changed something", len(rs))
	}
}

// client_auth: require refuses every request without a verified
// certificate (bearer tokens alone, /metrics, /readyz) but /healthz.
func TestMTLSRequireMode(t *testing.T) {
	ca := pki.NewCA(t, "people CA")
	m := newMTLSEnv(t, config.ClientAuthRequire, ca)
	sam := ca.Issue(t, pki.Leaf{Emails: []string{"sam@sre.example.com"}})
	samToken := m.token("sam@sre.example.com", auth.RoleOperator, "")
	for _, path := range []string{"/v1/whoami", "/metrics", "/readyz"} {
		if a := m.as(nil, samToken, "GET", path, nil); a.status != http.StatusUnauthorized {
			t.Errorf("%s with a token and no certificate: %d, want 401", path, a.status)
		}
	}
	if a := m.as(nil, testBootstrap, "POST", "/v1/keys/db/rotate", nil); a.status != http.StatusUnauthorized {
		t.Errorf("rotate with the bootstrap token and no certificate: %d, want 401", a.status)
	}
	if a := m.as(nil, "", "GET", "/healthz", nil); a.status != http.StatusOK {
		t.Errorf("/healthz without a certificate: %d, want 200", a.status)
	}
	if a := m.as(&sam, "", "GET", "/v1/whoami", nil); a.status != http.StatusOK || a.body["id"] != "sam@sre.example.com" {
		t.Errorf("whoami with sam's certificate: %d %v", a.status, a.body)
	}
	if a := m.as(&sam, samToken, "GET", "/v1/whoami", nil); a.status != http.StatusOK || roles(a) != "operator" {
		t.Errorf("whoami with sam's certificate and token: %d %v", a.status, a.body)
	}
	if a := m.as(&sam, "", "GET", "/metrics", nil); a.status != http.StatusOK {
		t.Errorf("/metrics with a certificate: %d", a.status)
	}
}

// The client CA bundle is re-read when it changes: a CA added is trusted
// and a CA removed is not, without a restart; a broken bundle keeps the
// last good one for a few seconds (a file being replaced), then trusts
// nothing; an emptied or removed bundle trusts nothing.
func TestMTLSReloadsClientCA(t *testing.T) {
	first, second := pki.NewCA(t, "first CA"), pki.NewCA(t, "second CA")
	m := newMTLSEnv(t, config.ClientAuthOptional, first)
	byFirst := first.Issue(t, pki.Leaf{Emails: []string{"alice@example.com"}})
	bySecond := second.Issue(t, pki.Leaf{Emails: []string{"bob@example.com"}})
	status := func(c pki.Pair) int { return m.as(&c, "", "GET", "/v1/whoami", nil).status }
	if got := status(bySecond); got != http.StatusUnauthorized {
		t.Fatalf("a certificate of a CA not yet in the bundle: %d, want 401", got)
	}
	waitFor := func(what string, c pki.Pair, want int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for got := status(c); got != want; got = status(c) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: still %d, want %d", what, got, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	pki.WriteFile(t, m.caFile, append(append([]byte{}, first.PEM...), second.PEM...))
	waitFor("the second CA added to the bundle", bySecond, http.StatusOK)
	pki.WriteFile(t, m.caFile, second.PEM)
	waitFor("the first CA removed from the bundle", byFirst, http.StatusUnauthorized)
	pki.WriteFile(t, m.caFile, []byte("-----BEGIN CERTIFICATE-----\nbroken\n"))
	if got := status(bySecond); got != http.StatusOK {
		t.Errorf("after a broken bundle was written: %d, want the last good bundle in force (200)", got)
	}
	// Fail closed: a bundle that stays broken past the grace, an emptied
	// one, a removed one trust nothing (removing or emptying the file is
	// how SECURITY.md says to revoke a CA's certificates).
	waitFor("a bundle broken past the grace", bySecond, http.StatusUnauthorized)
	pki.WriteFile(t, m.caFile, second.PEM)
	waitFor("the bundle fixed", bySecond, http.StatusOK)
	pki.WriteFile(t, m.caFile, nil)
	waitFor("the bundle emptied", bySecond, http.StatusUnauthorized)
	pki.WriteFile(t, m.caFile, second.PEM)
	waitFor("the bundle back", bySecond, http.StatusOK)
	if err := os.Remove(m.caFile); err != nil {
		t.Fatal(err)
	}
	waitFor("the bundle removed", bySecond, http.StatusUnauthorized)
}

// A client CA bundle that cannot be used stops the start with an error
// naming daemon.admin_tls.client_ca_file.
func TestMTLSBadCAFileIsAConfigError(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(bad, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, file := range map[string]string{"no PEM in it": bad, "missing": filepath.Join(dir, "none.pem")} {
		cfg := &config.Config{Daemon: config.Daemon{AdminTLS: config.TLS{CertFile: "c", KeyFile: "k", ClientCAFile: file}}}
		var errs config.Errors
		if err := checkClientCA(cfg); !errors.As(err, &errs) || errs[0].Path != "daemon.admin_tls.client_ca_file" || !strings.Contains(errs[0].Msg, file) {
			t.Errorf("%s: %v, want a config error at daemon.admin_tls.client_ca_file naming %s", name, err, file)
		}
	}
	// Build (the daemon, doctor, break-glass) says the same.
	cfg, err := config.Parse([]byte("store: {type: sqlite, path: " + filepath.Join(dir, "rekey.db") + "}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Daemon.AdminTLS = config.TLS{CertFile: "c", KeyFile: "k", ClientCAFile: bad}
	d, err := Build(context.Background(), cfg, slog.New(slog.DiscardHandler), BuildOptions{})
	if err == nil {
		d.Close()
	}
	var errs config.Errors
	if !errors.As(err, &errs) || errs[0].Path != "daemon.admin_tls.client_ca_file" {
		t.Errorf("Build with a CA file that holds no certificate: %v, want a config error at daemon.admin_tls.client_ca_file", err)
	}
}

// A certificate whose holder may change nothing (viewer, or no role at
// all: anyone the CA issued to) gets 403 on every change and leaves no
// audit row behind: the audit trail, never pruned, cannot be grown by
// whoever holds a certificate of the CA.
func TestMTLSRequestsOfNonChangersAreNotAudited(t *testing.T) {
	ca := pki.NewCA(t, "corp CA")
	m := newMTLSEnv(t, config.ClientAuthOptional, ca)
	before, err := m.d.Store.Audit(context.Background(), rotator.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, email := range []string{"sam@sre.example.com", "nobody@example.com"} {
		c := ca.Issue(t, pki.Leaf{Emails: []string{email}})
		for range 20 {
			if a := m.as(&c, "", "POST", "/v1/keys/api/rotate", map[string]any{}); a.status != http.StatusForbidden {
				t.Fatalf("%s rotating: %d %v, want 403", email, a.status, a.body)
			}
		}
	}
	after, err := m.d.Store.Audit(context.Background(), rotator.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("40 refused requests added %d audit events", len(after)-len(before))
	}
}
