package app

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/rekeyhq/rekey/auth"
	"github.com/rekeyhq/rekey/config"
	"github.com/rekeyhq/rekey/rotator"
)

// clientCAPath is the YAML path of the admin listener's client CA bundle.
const clientCAPath = "daemon.admin_tls.client_ca_file"

// certConfig is the auth configuration of client certificates, nil when
// the admin listener verifies none.
func certConfig(cfg *config.Config) *auth.CertConfig {
	t := cfg.Daemon.AdminTLS
	if t.ClientCAFile == "" {
		return nil
	}
	cc := &auth.CertConfig{CAFile: t.ClientCAFile, Require: t.ClientAuth == config.ClientAuthRequire, Groups: map[string][]auth.Grant{}}
	if c := cfg.Auth.Certs; c != nil {
		cc.CNFallback = c.Identity == "cn"
		for _, u := range c.Users {
			role, _ := auth.ParseRole(u.Role) // validated
			cc.Users = append(cc.Users, auth.CertUser{Identity: u.Identity, Pattern: u.Pattern, Grant: auth.Grant{Role: role, Keys: u.Keys, Team: u.Team}})
		}
		for _, g := range c.Groups {
			role, _ := auth.ParseRole(g.Role) // validated
			cc.Groups[g.Group] = append(cc.Groups[g.Group], auth.Grant{Role: role, Keys: g.Keys, Team: g.Team})
		}
	}
	return cc
}

// checkClientCA loads the client CA bundle, for a start that must fail
// (naming the YAML path) before it binds.
func checkClientCA(cfg *config.Config) error {
	if f := cfg.Daemon.AdminTLS.ClientCAFile; f != "" {
		if _, err := auth.LoadCAFile(f); err != nil {
			return config.Errors{{Path: clientCAPath, Msg: err.Error()}}
		}
	}
	return nil
}

// buildCerts sets up client-certificate authentication (buildAuth).
func (d *Daemon) buildCerts() error {
	cc := certConfig(d.Config)
	if cc == nil {
		return nil
	}
	cc.OnReloadError = func(err error) {
		d.Logger.Warn("admin tls: the changed client CA bundle cannot be used; keeping the last good one", "path", cc.CAFile, "err", err.Error())
	}
	certs, err := auth.NewCerts(*cc, d.Directory)
	if err != nil {
		return config.Errors{{Path: clientCAPath, Msg: err.Error()}}
	}
	d.Auth.Certs = certs
	return nil
}

// clientCerts holds every request to the client-certificate rules
// before any handler runs: a certificate, when one is presented, must
// verify, and with daemon.admin_tls.client_auth require one must be. Else
// 401, counted as a failed authentication — whatever else the request
// carries (the metrics token included). /healthz alone is exempt.
func (d *Daemon) clientCerts(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		noCert := r.TLS == nil || len(r.TLS.PeerCertificates) == 0
		if r.URL.Path == "/healthz" || noCert && !d.Auth.Certs.Required() {
			h.ServeHTTP(w, r)
			return
		}
		addr := auth.ClientAddr(r)
		if wait := d.limiter.Blocked(addr); wait > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())))
			writeError(w, http.StatusTooManyRequests, "too many failed authentications from this address; retry later")
			return
		}
		p, err := d.Auth.Certs.Authenticate(r.TLS)
		if err != nil || p == nil {
			d.limiter.Failed(addr)
			msg := "a verified client certificate is required"
			if err != nil {
				msg = err.Error()
			}
			d.Logger.Warn("admin api: authentication failed", "client", addr, "path", r.URL.Path, "err", msg)
			writeError(w, http.StatusUnauthorized, certRefusal(err, noCert))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// auditCert records, before a request that changes something is served,
// which client certificate it came with (serial, SHA-256 fingerprint,
// issuer): the actions themselves record the principal. Nothing is done
// if the record cannot be written.
func (d *Daemon) auditCert(ctx context.Context, p *auth.Principal, r *http.Request) error {
	return d.Store.Save(ctx, rotator.Commit{Audit: []rotator.AuditEvent{{At: time.Now(), Actor: p.ID, Action: "mtls.request",
		Detail: map[string]string{"via": p.Via, "request": r.Method + " " + r.URL.Path, "cert_serial": p.Cert.Serial,
			"cert_sha256": p.Cert.SHA256, "cert_issuer": p.Cert.Issuer}}}})
}

// certRefusal tells the holder why their certificate was refused, in
// words that name nothing of the server's (the full error, with serial
// and fingerprint, is in the log).
func certRefusal(err error, noCert bool) string {
	var invalid x509.CertificateInvalidError
	var unknown x509.UnknownAuthorityError
	switch {
	case noCert:
		return "a verified client certificate is required"
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return "the client certificate has expired or is not valid yet"
	case errors.As(err, &invalid) && invalid.Reason == x509.IncompatibleUsage:
		return "the client certificate is not for client authentication (extended key usage)"
	case errors.As(err, &unknown):
		return "the client certificate is not signed by a CA this listener trusts"
	case errors.Is(err, auth.ErrCertNoIdentity):
		return "the client certificate names no identity rekey accepts (an email SAN)"
	case errors.Is(err, auth.ErrCertIdentityRefused):
		return "the client certificate's identity is reserved for rekey's own actors"
	}
	return "the client certificate could not be verified"
}
