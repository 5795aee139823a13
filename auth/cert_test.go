package auth

import (
	"crypto/tls"
	"crypto/x509"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rekeyhq/rekey/testing/pki"
)

// Which identity a verified certificate gives, with and without the CN
// fallback, and what it is refused for.
func TestCertIdentity(t *testing.T) {
	ca := pki.NewCA(t, "people CA")
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pki.WriteFile(t, caFile, ca.PEM)
	dir := NewDirectory(map[string]string{"svc-deploy": "deploy@example.com"})
	state := func(c pki.Pair) *tls.ConnectionState {
		return &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c.Cert}}
	}
	for name, tc := range map[string]struct {
		leaf pki.Leaf
		cn   bool
		id   string // "" = refused
		err  string
	}{
		"first email SAN":                   {leaf: pki.Leaf{CN: "x", Emails: []string{"B@Example.com", "a@example.com"}}, id: "b@example.com"},
		"email wins over the CN":            {leaf: pki.Leaf{CN: "svc-deploy", Emails: []string{"c@example.com"}}, cn: true, id: "c@example.com"},
		"CN only when asked, through alias": {leaf: pki.Leaf{CN: "svc-deploy"}, cn: true, id: "deploy@example.com"},
		"CN ignored by default":             {leaf: pki.Leaf{CN: "svc-deploy"}, err: "no usable identity: it needs an email SAN"},
		"no identity at all":                {leaf: pki.Leaf{}, cn: true, err: "an email SAN or a Subject CN"},
		"reserved CN":                       {leaf: pki.Leaf{CN: "ѕcheduler"}, cn: true, err: "reserved"}, // Cyrillic ѕ
		"a server certificate":              {leaf: pki.Leaf{Emails: []string{"d@example.com"}, Server: true}, err: "incompatible key usage"},
	} {
		c, err := NewCerts(CertConfig{CAFile: caFile, CNFallback: tc.cn}, dir)
		if err != nil {
			t.Fatal(err)
		}
		p, err := c.Authenticate(state(ca.Issue(t, tc.leaf)))
		switch {
		case tc.id != "" && (err != nil || p == nil || p.ID != tc.id || p.Via != ViaMTLS || p.Cert == nil):
			t.Errorf("%s: %+v %v, want %s via mtls", name, p, err, tc.id)
		case tc.id == "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: %+v %v, want an error with %q", name, p, err, tc.err)
		}
	}
	c, _ := NewCerts(CertConfig{CAFile: caFile}, dir)
	if p, err := c.Authenticate(&tls.ConnectionState{}); p != nil || err != nil {
		t.Errorf("no certificate: %v %v, want neither a principal nor an error", p, err)
	}
}

// BenchmarkCertsAuthenticate is the cost each request pays for verifying
// its client certificate (the CA file's stat, the chain, the mapping).
func BenchmarkCertsAuthenticate(b *testing.B) {
	ca := pki.NewCA(b, "people CA")
	caFile := filepath.Join(b.TempDir(), "ca.pem")
	pki.WriteFile(b, caFile, ca.PEM)
	c, err := NewCerts(CertConfig{CAFile: caFile, Users: []CertUser{{Pattern: "*@example.com", Grant: Grant{Role: RoleViewer}}}}, NewDirectory(nil))
	if err != nil {
		b.Fatal(err)
	}
	state := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{ca.Issue(b, pki.Leaf{Emails: []string{"a@example.com"}}).Cert}}
	for b.Loop() {
		if p, err := c.Authenticate(state); err != nil || p == nil {
			b.Fatal(err)
		}
	}
}
