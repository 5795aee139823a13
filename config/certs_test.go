package config

import (
	"strings"
	"testing"
)

func TestClientCertificateConfig(t *testing.T) {
	const tlsOK = "daemon: {admin_tls: {cert_file: /c.pem, key_file: /k.pem, client_ca_file: /ca.pem}}\n"
	tests := map[string]struct {
		yaml string
		want []string // empty: valid
	}{
		"valid, with users and groups": {
			yaml: base + "daemon: {admin_tls: {cert_file: /c.pem, key_file: /k.pem, client_ca_file: /ca.pem, client_auth: require}}\n" +
				"auth: {certs: {identity: cn, users: [{identity: alice@example.com, role: admin}, {pattern: '*@sre.example.com', role: viewer, keys: 'db-*'}], groups: [{group: payments, role: operator, team: payments}]}}\n",
		},
		"a client CA without the listener's certificate": {
			yaml: base + "daemon: {admin_tls: {client_ca_file: /ca.pem}}\n",
			want: []string{`daemon.admin_tls.client_ca_file: needs daemon.admin_tls.cert_file and key_file`},
		},
		"client certificates on the public listener": {
			yaml: base + "daemon: {tls: {cert_file: /c.pem, key_file: /k.pem, client_ca_file: /ca.pem, client_auth: require}}\n",
			want: []string{`daemon.tls.client_ca_file: client certificates authenticate people on the admin listener only`, `daemon.tls.client_auth:`},
		},
		"an unknown mode": {
			yaml: base + "daemon: {admin_tls: {cert_file: /c.pem, key_file: /k.pem, client_ca_file: /ca.pem, client_auth: required}}\n",
			want: []string{`daemon.admin_tls.client_auth: must be optional or require, got "required"`},
		},
		"a mode without a CA": {
			yaml: base + "daemon: {admin_tls: {cert_file: /c.pem, key_file: /k.pem, client_auth: require}}\n",
			want: []string{`daemon.admin_tls.client_auth: needs daemon.admin_tls.client_ca_file`},
		},
		"auth.certs without a CA": {
			yaml: base + "auth: {certs: {users: [{identity: alice@example.com, role: admin}]}}\n",
			want: []string{`auth.certs: needs daemon.admin_tls.client_ca_file`},
		},
		"bad users and groups": {
			yaml: base + tlsOK + "auth: {certs: {identity: uid, users: [{role: admin}, {identity: a@example.com, pattern: '*', role: admin}, " +
				"{identity: Scheduler, role: admin}, {pattern: '[', role: boss, keys: '['}], groups: [{role: viewer}]}}\n",
			want: []string{
				`auth.certs.identity: must be email (the first email SAN) or cn`,
				`auth.certs.users[0]: set one of identity and pattern`,
				`auth.certs.users[1]: set one of identity and pattern`,
				`auth.certs.users[2].identity: identity "scheduler" is reserved`,
				`auth.certs.users[3].pattern: identity pattern "["`,
				`auth.certs.users[3].role: unknown role "boss"`,
				`auth.certs.users[3].keys: key pattern "["`,
				`auth.certs.groups[0].group: required`,
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			errs := cfg.Validate(known)
			if len(tc.want) == 0 && len(errs) > 0 {
				t.Fatalf("a valid configuration was refused: %v", errs)
			}
			if len(tc.want) > 0 && len(errs) == 0 {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(errs.Error(), w) {
					t.Errorf("missing %q in:\n%s", w, errs.Error())
				}
			}
		})
	}
}
