package config

import (
	"strings"
	"testing"
	"time"
)

const base = `
issuers:
  - {name: demo, type: random}
sinks:
  - {name: vault-prod, type: vault}
  - {name: aws-prod, type: awssm}
notifiers:
  - {name: log, type: log}
traffic:
  - {name: fixed, type: fixed}
keys:
  - name: a
    issuer: demo
    sinks: [{sink: vault-prod}]
  - name: b
    issuer: demo
    sinks: [{sink: aws-prod}]
`

var known = KnownTypes{
	FamilyIssuers: {"random", "http"}, FamilySinks: {"file", "vault", "awssm"},
	FamilyNotifiers: {"log", "webhook"}, FamilyTraffic: {"fixed"},
}

func TestBrokenConfigsNameTheirPath(t *testing.T) {
	tests := map[string]struct {
		yaml string
		want []string
	}{
		"unknown sink reference": {
			yaml: base + "  - {name: c, issuer: demo, sinks: [{sink: vault-prd}]}\n",
			want: []string{`keys[2].sinks[0].sink: unknown sink "vault-prd" (known: aws-prod, vault-prod)`},
		},
		"unknown issuer": {
			yaml: base + "  - {name: c, issuer: nope, sinks: [{sink: aws-prod}]}\n",
			want: []string{`keys[2].issuer: unknown issuer "nope" (known: demo)`},
		},
		"unknown field with the known ones": {
			yaml: base + "daemon: {listn: 1.2.3.4:80}\n",
			want: []string{`daemon.listn: unknown field (known: address_file, admin_address_file, admin_listen, admin_tls, admin_token_env, admin_token_file, concurrency,`},
		},
		"listen port out of range": {
			yaml: base + "daemon: {listen: 127.0.0.1:70000}\n",
			want: []string{`daemon.listen: port 70000 is out of range 0..65535`},
		},
		"address file that names a directory": {
			yaml: base + "daemon: {listen: 127.0.0.1:0, address_file: /run/rekey/}\n",
			want: []string{`daemon.address_file: "/run/rekey/" is not a file path`},
		},
		"admin listener": {
			yaml: base + "daemon: {listen: 127.0.0.1:8080, admin_listen: 127.0.0.1:8080, admin_tls: {cert_file: /c}}\n",
			want: []string{`daemon.admin_listen: "127.0.0.1:8080" is also daemon.listen`, `daemon.admin_tls: cert_file and key_file are both required`},
		},
		"relative admin socket": {
			yaml: base + "daemon: {admin_listen: unix:admin.sock}\n",
			want: []string{`daemon.admin_listen: unix socket "admin.sock" must be an absolute path`},
		},
		"oidc": {
			yaml: base + "auth: {oidc: {issuer: login.example.com, cli_scopes: [email], groups: [{group: g, role: root}, {role: viewer, keys: \"[\"}]}}\n",
			want: []string{`auth.oidc.issuer: required`, `auth.oidc.audience: required`, `auth.oidc.groups[0].role: unknown role "root"`,
				`auth.oidc.groups[1].group: required`, `auth.oidc.groups[1].keys: key pattern "["`, `auth.oidc.cli_scopes: must include openid`},
		},
		"inline secret refused": {
			yaml: base + "daemon: {admin_token: hunter2}\n",
			want: []string{`daemon.admin_token: inline secrets are not allowed; use admin_token_env or admin_token_file`},
		},
		"bad duration": {
			yaml: base + "defaults: {policies: {max_age: 3 months}}\n",
			want: []string{`defaults.policies.max_age: invalid duration (use e.g.`},
		},
		"warn_before not shorter than max_age": {
			yaml: base + "defaults: {policies: {max_age: 30d, warn_before: 30d}}\n",
			want: []string{`defaults.policies.warn_before: must be shorter than max_age`},
		},
		"duplicate key": {
			yaml: base + "  - {name: a, issuer: demo, sinks: [{sink: aws-prod}]}\n",
			want: []string{`keys[2].name: duplicate key "a" (also keys[0])`},
		},
		"bad key name": {
			yaml: base + "  - {name: Bad Name, issuer: demo, sinks: [{sink: aws-prod}]}\n",
			want: []string{`keys[2].name: "Bad Name" must be lowercase`},
		},
		"no sinks": {
			yaml: base + "  - {name: c, issuer: demo}\n",
			want: []string{`keys[2].sinks: at least one sink is required`},
		},
		"unknown adapter type": {
			yaml: strings.Replace(base, "type: awssm", "type: azure", 1),
			want: []string{`sinks[1].type: unknown sink type "azure" (known: file, vault, awssm)`},
		},
		"bad cron": {
			yaml: base + "daemon: {schedule: every tuesday}\n",
			want: []string{`daemon.schedule: invalid cron spec "every tuesday"`},
		},
		"lease TTL out of range": {
			yaml: base + "daemon: {lease_ttl: 500ms}\n",
			want: []string{`daemon.lease_ttl: must be between 1s and 10m, got 500ms`},
		},
		"bad window": {
			yaml: base + "defaults: {windows: [{days: [funday], start: '09:00', end: '17:00'}]}\n",
			want: []string{`defaults.windows[0]: days: "funday" is not a weekday`},
		},
		"unknown drain source": {
			yaml: base + "defaults: {drain: {source: prom}}\n",
			want: []string{`defaults.drain.source: unknown traffic source "prom" (known: fixed)`},
		},
		"unknown gate": {
			yaml: base + "defaults: {approval: {gates: [revoke, lunch]}}\n",
			want: []string{`defaults.approval.gates[1]: unknown gate "lunch"`},
		},
		"more approvals than approvers": {
			yaml: base + "defaults: {approval: {gates: [start], approvers: [bob], required: 2}}\n",
			want: []string{`keys[0].approval.required: 2 approvals required but only 1 approvers listed`},
		},
		"unknown notifier": {
			yaml: base + "defaults: {notify: [slack]}\n",
			want: []string{`defaults.notify[0]: unknown notifier "slack" (known: log)`},
		},
		"postgres without dsn": {
			yaml: base + "store: {type: postgres}\n",
			want: []string{`store.dsn_env: set exactly one of dsn_env and dsn_file`},
		},
		"several problems at once": {
			yaml: "daemon: {concurrency: 0}\n" + base + "  - {name: c, issuer: x, sinks: [{sink: y}]}\n",
			want: []string{`daemon.concurrency: must be between 1 and 1024`, `keys[2].issuer: unknown issuer "x"`, `keys[2].sinks[0].sink: unknown sink "y"`},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.yaml))
			var all string
			if err != nil {
				all = err.Error() + "\n"
			}
			if cfg != nil {
				all += cfg.Validate(known).Error()
			}
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("missing %q in:\n%s", w, all)
				}
			}
		})
	}
}

func TestValidConfigAndDefaults(t *testing.T) {
	cfg, err := Parse([]byte(base + "defaults: {policies: {max_age: 2w}, drain: {quiet_period: 1d12h}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if errs := cfg.Validate(known); len(errs) > 0 {
		t.Fatalf("unexpected problems: %v", errs)
	}
	eff := cfg.Effective(cfg.Keys[0])
	if eff.Policies.MaxAge != 14*24*time.Hour || eff.Drain.QuietPeriod != 36*time.Hour {
		t.Fatalf("effective settings: %+v %+v", eff.Policies, eff.Drain)
	}
	if cfg.Daemon.Listen != DefaultListen || cfg.Store.Type != "sqlite" || cfg.Daemon.Concurrency != 4 || cfg.Daemon.LeaseTTL != 15*time.Second {
		t.Fatalf("defaults not applied: %+v %+v", cfg.Daemon, cfg.Store)
	}
	if cfg.Sinks[0].Settings == nil && len(cfg.Sinks[0].Settings) != 0 {
		t.Fatal("settings lost")
	}
}

func TestEnvOverrides(t *testing.T) {
	t.Setenv("REKEY_DAEMON__LISTEN", "127.0.0.1:9999")
	t.Setenv("REKEY_DAEMON__CONCURRENCY", "9")
	t.Setenv("REKEY_FAILPOINT", "ignored: not a config section")
	cfg, err := Parse([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Daemon.Listen != "127.0.0.1:9999" || cfg.Daemon.Concurrency != 9 {
		t.Fatalf("env not applied: %+v", cfg.Daemon)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"90d": 90 * 24 * time.Hour, "2w": 14 * 24 * time.Hour, "1d12h": 36 * time.Hour, "30s": 30 * time.Second, "0": 0, "1.5d": 36 * time.Hour,
	} {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "d", "ninety", "-3d", "5x"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) succeeded", bad)
		}
	}
}

// An error about a value an environment variable set names the variable:
// the YAML path it reports is in no file.
func TestEnvOverrideErrorsNameTheVariable(t *testing.T) {
	t.Setenv("REKEY_DEFAULTS__DRAIN__QUIET_PERIOD", "bogus")
	_, err := Parse([]byte("store: {type: sqlite, path: /tmp/x.db}\n"))
	if err == nil || !strings.Contains(err.Error(), "defaults.drain.quiet_period") || !strings.Contains(err.Error(), "(set by the environment variable REKEY_DEFAULTS__DRAIN__QUIET_PERIOD)") {
		t.Fatalf("decode error: %v", err)
	}
	t.Setenv("REKEY_DEFAULTS__DRAIN__QUIET_PERIOD", "30s")
	t.Setenv("REKEY_STORE__TYPE", "mysql")
	cfg, err := Parse([]byte("store: {type: sqlite, path: /tmp/x.db}\n"))
	if err != nil {
		t.Fatal(err)
	}
	errs := cfg.Validate(nil)
	if !strings.Contains(errs.Error(), "store.type") || !strings.Contains(errs.Error(), "REKEY_STORE__TYPE") {
		t.Fatalf("validate error: %v", errs)
	}
}
