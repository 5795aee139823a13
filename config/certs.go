package config

import (
	"fmt"
	"path"
	"slices"

	"github.com/rekeyhq/rekey/auth"
)

// validateCerts checks client-certificate authentication: the CA bundle
// on the admin listener (never the public one), its mode, and auth.certs.
// Whether the bundle parses is checked when the daemon starts (the file
// may not exist where the configuration is validated).
func (c *Config) validateCerts(errs *Errors) {
	pub, adm := c.Daemon.TLS, c.Daemon.AdminTLS
	if pub.ClientCAFile != "" {
		errs.Add("daemon.tls.client_ca_file", "client certificates authenticate people on the admin listener only: set daemon.admin_tls.client_ca_file")
	}
	if pub.ClientAuth != "" {
		errs.Add("daemon.tls.client_auth", "client certificates authenticate people on the admin listener only: set daemon.admin_tls.client_auth")
	}
	if adm.ClientCAFile != "" && (adm.CertFile == "" || adm.KeyFile == "") {
		errs.Add("daemon.admin_tls.client_ca_file", "needs daemon.admin_tls.cert_file and key_file: client certificates are asked for over TLS only")
	}
	switch adm.ClientAuth {
	case "", ClientAuthOptional, ClientAuthRequire:
		if adm.ClientAuth != "" && adm.ClientCAFile == "" {
			errs.Add("daemon.admin_tls.client_auth", "needs daemon.admin_tls.client_ca_file, the CAs client certificates are verified against")
		}
	default:
		errs.Add("daemon.admin_tls.client_auth", "must be optional or require, got %q", adm.ClientAuth)
	}
	ct := c.Auth.Certs
	if ct == nil {
		return
	}
	if adm.ClientCAFile == "" {
		errs.Add("auth.certs", "needs daemon.admin_tls.client_ca_file: without it no client certificate is verified")
	}
	if !slices.Contains([]string{"", "email", "cn"}, ct.Identity) {
		errs.Add("auth.certs.identity", "must be email (the first email SAN) or cn (the first email SAN, else the Subject CN), got %q", ct.Identity)
	}
	for i, u := range ct.Users {
		p := fmt.Sprintf("auth.certs.users[%d]", i)
		switch {
		case (u.Identity == "") == (u.Pattern == ""):
			errs.Add(p, "set one of identity and pattern")
		case u.Identity != "":
			if err := auth.Reserved(u.Identity); err != nil {
				errs.Add(p+".identity", "%v", err)
			}
		default:
			if _, err := path.Match(u.Pattern, ""); err != nil {
				errs.Add(p+".pattern", "identity pattern %q: %v", u.Pattern, err)
			}
		}
		validateGrant(errs, p, u.Role, u.Keys)
	}
	for i, g := range ct.Groups {
		p := fmt.Sprintf("auth.certs.groups[%d]", i)
		if g.Group == "" {
			errs.Add(p+".group", "required: a Subject OU of the certificates")
		}
		validateGrant(errs, p, g.Role, g.Keys)
	}
}

func validateGrant(errs *Errors, p, role, keys string) {
	if _, err := auth.ParseRole(role); err != nil {
		errs.Add(p+".role", "%v", err)
	}
	if keys != "" {
		if err := auth.ValidPattern(keys); err != nil {
			errs.Add(p+".keys", "%v", err)
		}
	}
}
