package app

import (
	"io"
	"strings"
	"testing"

	"github.com/rekeyhq/rekey/config"
)

// TestValidateRefusesPathsLeavingTheirRoot: every traversal of issue 12 is
// refused by `rekey validate`, each with its YAML path, all at once.
func TestValidateRefusesPathsLeavingTheirRoot(t *testing.T) {
	yaml := `
issuers: [{name: rnd, type: random}]
sinks:
  - {name: files, type: file, dir: /tmp/rekey-secrets}
  - {name: vault, type: vault, address: "https://vault:8200", auth: {token_env: VAULT_TOKEN}}
  - {name: vault-bad, type: vault, address: "https://vault:8200", mount: "secret/../sys", auth: {token_env: VAULT_TOKEN}}
keys:
  - name: up
    issuer: rnd
    sinks: [{sink: files, path: ../../etc/x}]
  - name: abs
    issuer: rnd
    sinks: [{sink: files, path: /etc/x}]
  - name: empty
    issuer: rnd
    sinks: [{sink: files, path: "team//x"}]
  - name: policy
    issuer: rnd
    sinks: [{sink: vault, path: ../../sys/policy/root}]
  - name: mount
    issuer: rnd
    sinks: [{sink: vault, path: x, params: {mount: "secret/../sys"}}]
  - name: fine
    issuer: rnd
    sinks: [{sink: files, path: team/fine}, {sink: vault, path: secret/data/team/fine}]
`
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	errs := Validate(cfg)
	got := map[string]string{}
	for _, e := range errs {
		got[e.Path] = e.Msg
	}
	for path, want := range map[string]string{
		"sinks[2].mount":                "'..' segment",
		"keys[0].sinks[0].path":         "'..' segment",
		"keys[1].sinks[0].path":         "absolute",
		"keys[2].sinks[0].path":         "empty segment",
		"keys[3].sinks[0].path":         "'..' segment",
		"keys[4].sinks[0].params.mount": "'..' segment",
	} {
		if !strings.Contains(got[path], want) {
			t.Errorf("%s: got %q, want a message with %q", path, got[path], want)
		}
	}
	for path := range got {
		if strings.HasPrefix(path, "keys[5]") {
			t.Errorf("a valid binding was refused: %s: %s", path, got[path])
		}
	}
	if t.Failed() {
		t.Logf("all errors:\n%v", errs)
	}
}

// TestValidateCatchesTemplateFieldErrors: a query naming a field that does
// not exist parses, but must be refused by plain `validate` — in a key's
// drain.query, its unauthorized policy and the source's own default — each
// with its YAML path; a correct query passes.
func TestValidateCatchesTemplateFieldErrors(t *testing.T) {
	yaml := `
issuers: [{name: rnd, type: random}]
sinks: [{name: files, type: file, dir: /tmp/rekey-secrets}]
traffic:
  - {name: prom, type: prometheus, url: "http://127.0.0.1:9090"}
  - {name: prom-default, type: prometheus, url: "http://127.0.0.1:9090", query: 'sum(rate(x{key="{{promql .Nmae}}"}[5m]))'}
defaults:
  policies: {unauthorized: {source: prom, query: 'sum(x{id="{{promql .Nope}}"})', threshold: 1}}
auth: {identities: {ops-bot: scheduler, ana: ana@example.com}}
keys:
  - name: typo
    issuer: rnd
    sinks: [{sink: files}]
    drain: {source: prom, query: 'sum(rate(http_401_total{key="{{promql .Kye}}"}[5m]))'}
  - name: policy
    issuer: rnd
    sinks: [{sink: files}]
    policies: {unauthorized: {source: prom, query: 'sum(rate(x{name="{{promql .OldNmae}}"}[5m]))', threshold: 1}}
  - name: fine
    issuer: rnd
    sinks: [{sink: files}]
    drain: {source: prom, query: 'sum(rate(http_401_total{key="{{promql .Key}}",name="{{promql .OldName}}"}[{{.Window}}]))'}
`
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	errs := Validate(cfg)
	got := errs.Error()
	for _, want := range []string{"keys[0].drain.query", "Kye", "keys[1].policies.unauthorized.query", "OldNmae", "traffic[1].query", "Nmae",
		"defaults.policies.unauthorized.query", "Nope", `auth.identities.ops-bot: identity "scheduler" is reserved`} {
		if !strings.Contains(got, want) {
			t.Errorf("validate does not report %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "keys[2]") || strings.Contains(got, "auth.identities.ana") {
		t.Errorf("a correct query is refused:\n%s", got)
	}
}

// fixed is built in: a drain names it without declaring a traffic source
// of that name (as docs/ZERO-DOWNTIME.md's example does), and the key's
// gate uses it. On the code before, validate refused the reference.
func TestBuiltinFixedSourceNeedsNoDeclaration(t *testing.T) {
	dir := t.TempDir()
	yaml := `
store: {type: sqlite, path: ` + dir + `/rekey.db}
issuers: [{name: demo, type: random, ledger: ` + dir + `/ledger.json}]
sinks: [{name: files, type: file, dir: ` + dir + `/secrets}]
keys:
  - name: api
    issuer: demo
    sinks: [{sink: files}]
    drain: {source: fixed, quiet_period: 1m, consumers_reload_within: 15m, max_wait: 24h}
`
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if errs := Validate(cfg); len(errs) > 0 {
		t.Fatalf("validate: %v", errs)
	}
	d, err := Build(t.Context(), cfg, NewLogger(io.Discard, "error"), BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	k, _ := d.Engine.Key("api")
	if k.Drain.SourceName != "fixed" || k.Drain.Source == nil || len(k.Drain.Require()) != 0 {
		t.Fatalf("drain of api: source %q (%v), requires %v", k.Drain.SourceName, k.Drain.Source, k.Drain.Require())
	}
}
