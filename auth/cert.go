package auth

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"sync"
	"time"
)

// ViaMTLS is the Via of a principal authenticated by a client certificate.
const ViaMTLS = "mtls"

// CertConfig configures client certificates (mTLS) as a way to
// authenticate on the admin listener, on the model of Kubernetes' x509
// authenticator and Vault's cert auth method: the TLS layer only asks for a
// certificate, and every request's certificate is verified here against
// the CA bundle as it is on disk now, so that a failure is a 401 counted by
// the failed-authentication limiter like any other, never a handshake
// error.
type CertConfig struct {
	// CAFile is the PEM bundle of the CAs whose client certificates are
	// trusted; re-read when it changes.
	CAFile string
	// Require refuses every request without a verified certificate;
	// otherwise a certificate, when presented, must verify, and bearer
	// credentials are accepted as well.
	Require bool
	// CNFallback lets the Subject CN name the person when the certificate
	// has no email SAN (auth.certs.identity: cn).
	CNFallback bool
	// Users grant roles to certificate principals by identity or pattern.
	Users []CertUser
	// Groups map a Subject OU to the grants its holders receive.
	Groups map[string][]Grant
	// Now is the clock certificates are checked against (tests).
	Now func() time.Time
	// OnReloadError is told when a changed CA file cannot be used, and
	// when rekey stops trusting any client certificate because of it.
	OnReloadError func(error)
}

// CertUser grants a role to the certificate principal whose canonical
// identity is Identity, or matches Pattern (path.Match syntax,
// "*@sre.example.com").
type CertUser struct {
	Identity string
	Pattern  string
	Grant    Grant
}

// CertID is what identifies the certificate a principal presented, for the
// audit trail: never the key, which never leaves the client.
type CertID struct {
	Serial string // hexadecimal
	SHA256 string // of the DER certificate, hexadecimal
	Issuer string // the issuer's distinguished name
}

// Why a verified-looking certificate names nobody rekey accepts.
var (
	ErrCertNoIdentity      = errors.New("no usable identity")
	ErrCertIdentityRefused = errors.New("identity refused")
)

// Certs verifies client certificates against a CA bundle re-read on
// change, and maps them to principals.
type Certs struct {
	cfg CertConfig
	dir *Directory

	mu       sync.Mutex
	pool     *x509.CertPool
	sum      [sha256.Size]byte // of the file the pool was read from
	checked  time.Time         // when the file was last read
	badSince time.Time         // since when it cannot be used (zero: it can)
}

// The CA file is read again at most every caRecheck, and its content
// compared (a bundle copied with its time and size kept is still seen).
// A file that cannot be read or parsed (being replaced) keeps the last
// good bundle for caGrace, then nothing is trusted until it is fixed; a
// file emptied of certificates trusts nothing at once — removing a CA from
// the bundle, or emptying it, revokes its certificates, fail closed.
var (
	caRecheck = time.Second
	caGrace   = 5 * time.Second
)

// NewCerts loads cfg.CAFile; a file that cannot be read or holds no
// certificate is an error naming it.
func NewCerts(cfg CertConfig, dir *Directory) (*Certs, error) {
	c := &Certs{cfg: cfg, dir: dir}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// LoadCAFile parses a PEM bundle of CA certificates.
func LoadCAFile(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

// reload re-reads the CA file (see caRecheck and caGrace).
func (c *Certs) reload() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if c.pool != nil && now.Sub(c.checked) < caRecheck && !now.Before(c.checked) {
		return nil
	}
	c.checked = now
	b, err := os.ReadFile(c.cfg.CAFile)
	if err != nil {
		if c.pool == nil {
			return err
		}
		c.unusable(now, err)
		return nil
	}
	sum := sha256.Sum256(b)
	if c.pool != nil && sum == c.sum && c.badSince.IsZero() {
		return nil
	}
	if !bytes.Contains(b, []byte("-----BEGIN")) {
		if c.pool == nil {
			return fmt.Errorf("%s holds no PEM certificate", c.cfg.CAFile)
		}
		c.pool, c.sum, c.badSince = x509.NewCertPool(), sum, time.Time{}
		c.report(fmt.Errorf("%s holds no certificate any more: no client certificate is trusted", c.cfg.CAFile))
		return nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		err := fmt.Errorf("%s holds no PEM certificate", c.cfg.CAFile)
		if c.pool == nil {
			return err
		}
		c.unusable(now, err)
		return nil
	}
	c.pool, c.sum, c.badSince = pool, sum, time.Time{}
	return nil
}

// unusable keeps the last good bundle for caGrace after the file became
// unusable, then trusts nothing until it is fixed.
func (c *Certs) unusable(now time.Time, err error) {
	if c.badSince.IsZero() {
		c.badSince = now
		c.report(fmt.Errorf("%w (the last good bundle stays in force for %s)", err, caGrace))
		return
	}
	if now.Sub(c.badSince) >= caGrace && c.sum != ([sha256.Size]byte{}) {
		c.pool, c.sum = x509.NewCertPool(), [sha256.Size]byte{}
		c.report(fmt.Errorf("%w for %s: no client certificate is trusted until it is fixed", err, caGrace))
	}
}

func (c *Certs) report(err error) {
	if c.cfg.OnReloadError != nil {
		c.cfg.OnReloadError(err)
	}
}

func (c *Certs) roots() *x509.CertPool {
	_ = c.reload() // errors keep the last good bundle
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pool
}

// Required reports whether every request needs a verified certificate.
func (c *Certs) Required() bool { return c != nil && c.cfg.Require }

// Authenticate returns the principal of the client certificate of a TLS
// connection, nil (and no error) when none was presented. A certificate
// that does not verify (another CA, expired, not yet valid, not for
// client authentication), that names no usable identity, or whose
// identity is reserved is an error.
func (c *Certs) Authenticate(state *tls.ConnectionState) (*Principal, error) {
	if state == nil || len(state.PeerCertificates) == 0 {
		return nil, nil
	}
	leaf := state.PeerCertificates[0]
	now := time.Now()
	if c.cfg.Now != nil {
		now = c.cfg.Now()
	}
	inter := x509.NewCertPool()
	for _, ic := range state.PeerCertificates[1:] {
		inter.AddCert(ic)
	}
	id := certID(leaf)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: c.roots(), Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, fmt.Errorf("client certificate (serial %s, sha256 %s): %w", id.Serial, id.SHA256, err)
	}
	var name string
	switch {
	case len(leaf.EmailAddresses) > 0:
		name = leaf.EmailAddresses[0]
	case c.cfg.CNFallback:
		name = leaf.Subject.CommonName
	}
	if Canonical(name) == "" {
		want := "an email SAN"
		if c.cfg.CNFallback {
			want += " or a Subject CN"
		}
		return nil, fmt.Errorf("client certificate (serial %s, sha256 %s) has no usable identity: it needs %s: %w", id.Serial, id.SHA256, want, ErrCertNoIdentity)
	}
	p := &Principal{ID: c.dir.Canonical(name), Via: ViaMTLS, Cert: &id}
	if err := Reserved(p.ID); err != nil {
		return nil, fmt.Errorf("client certificate (serial %s, sha256 %s): %w: %w", id.Serial, id.SHA256, ErrCertIdentityRefused, err)
	}
	for _, u := range c.cfg.Users {
		if u.Identity != "" && c.dir.Canonical(u.Identity) == p.ID {
			p.Grants = append(p.Grants, u.Grant)
		} else if ok, _ := path.Match(Canonical(u.Pattern), p.ID); u.Pattern != "" && ok {
			p.Grants = append(p.Grants, u.Grant)
		}
	}
	for _, ou := range leaf.Subject.OrganizationalUnit {
		p.Grants = append(p.Grants, c.cfg.Groups[ou]...)
	}
	return p, nil
}

func certID(c *x509.Certificate) CertID {
	sum := sha256.Sum256(c.Raw)
	return CertID{Serial: c.SerialNumber.Text(16), SHA256: hex.EncodeToString(sum[:]), Issuer: c.Issuer.String()}
}
