package app

import (
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
