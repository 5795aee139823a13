package app

import (
	"os"
	"strings"
	"testing"

	"github.com/rekeyhq/rekey/config"
	"github.com/rekeyhq/rekey/rotator"
)

const gatesYAML = `
issuers: [{name: rnd, type: random}]
sinks: [{name: files, type: file, dir: /tmp/rekey-secrets}]
traffic:
  - {name: prom, type: prometheus, url: "http://prom:9090", query: 'sum(rate(x{code="401"}[5m]))'}
  - {name: prom-both, type: prometheus, url: "http://prom:9090", query: 'sum(rate(x{code="401"}[5m]))', old_key_query: 'sum(rate(x{id="{{promql .OldID}}"}[5m]))'}
  - {name: ka, type: kubeadapt, url: "http://ka:8089"}
  - {name: attested, type: consumers}
  - {name: bare, type: prometheus, url: "http://prom:9090"}
defaults:
  drain: {source: prom, quiet_period: 30s, max_wait: 1h}
keys:
  - {name: only401, issuer: rnd, sinks: [{sink: files}]}
  - name: declared
    issuer: rnd
    sinks: [{sink: files}]
    drain: {source: prom, quiet_period: 30s, max_wait: 1h, consumers_reload_within: 15m}
  - name: both
    issuer: rnd
    sinks: [{sink: files}]
    drain: {source: prom-both, require: [old_key_use, new_key_failures], quiet_period: 30s, max_wait: 1h}
  - name: attest
    issuer: rnd
    sinks: [{sink: files}]
    drain: {sources: [attested, prom], require: [old_key_use, new_key_failures], quiet_period: 30s, max_wait: 1h}
  - name: kubeadapt
    issuer: rnd
    sinks: [{sink: files}]
    drain: {source: ka, quiet_period: 30s, max_wait: 1h}
`

// Validate states what each key's gate proves and warns, naming the key
// and the consequence, when a gate that cannot see old-key use has no
// declared reload interval; the recommended gates ask both questions.
func TestGateNotes(t *testing.T) {
	cfg, err := config.Parse([]byte(gatesYAML))
	if err != nil {
		t.Fatal(err)
	}
	if errs := Validate(cfg); len(errs) > 0 {
		t.Fatalf("valid configuration refused: %v", errs)
	}
	notes, warnings := GateNotes(cfg)
	if len(warnings) != 1 || !strings.HasPrefix(warnings[0], "only401: ") || !strings.Contains(warnings[0], "consumers that reload slower than 30s will get 401s") ||
		!strings.Contains(warnings[0], "drain.consumers_reload_within") {
		t.Fatalf("warnings %q", warnings)
	}
	want := map[string]string{
		"only401":   "sees only failed authentication (prom)",
		"declared":  "consumers that reload within 15m",
		"both":      "nobody used the old key (prom-both) and no request failed authentication with the new or an unidentifiable key (prom-both)",
		"attest":    "nobody used the old key (attested) and no request failed authentication with the new or an unidentifiable key (prom)",
		"kubeadapt": "nobody used the old key (ka) and no request failed",
	}
	for i, n := range notes {
		k := cfg.Keys[i].Name
		if !strings.HasPrefix(n, "drain gate of "+k+": ") || !strings.Contains(n, want[k]) {
			t.Errorf("%s: %q lacks %q", k, n, want[k])
		}
	}
	for _, p := range GateProofs(cfg) {
		if p.Key == "declared" && p.Quiet.String() != "15m0s" {
			t.Errorf("declared: quiet %s, want the reload interval", p.Quiet)
		}
	}
}

// A required question no source answers, and a max_wait shorter than the
// declared reload interval, are errors with their YAML paths; so are an
// unknown question and source and sources together.
func TestGateErrors(t *testing.T) {
	yaml := strings.Replace(gatesYAML, "drain: {source: prom, quiet_period: 30s, max_wait: 1h, consumers_reload_within: 15m}",
		"drain: {source: prom, quiet_period: 30s, max_wait: 10m, consumers_reload_within: 15m}", 1)
	yaml = strings.Replace(yaml, "drain: {source: ka, quiet_period: 30s, max_wait: 1h}",
		"drain: {source: ka, sources: [prom], require: [old_key_use, new_keys], quiet_period: 30s}", 1)
	yaml = strings.Replace(yaml, "defaults:\n  drain: {source: prom,", "defaults:\n  drain: {source: prom, require: [old_key_use],", 1)
	yaml = strings.Replace(yaml, "drain: {sources: [attested, prom],", "drain: {sources: [attested, bare],", 1)
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range Validate(cfg) {
		got[e.Path] = e.Msg
	}
	for path, msg := range map[string]string{
		"defaults.drain.require[0]": "old_key_use: no source of this gate can answer it (prom (prometheus) answers [new_key_failures]: set drain.old_key_query",
		"keys[1].drain.max_wait":    "must be at least consumers_reload_within (15m0s)",
		"keys[4].drain.sources":     "set either source or sources, not both",
		"keys[4].drain.require[1]":  `unknown question "new_keys"`,
	} {
		if !strings.Contains(got[path], msg) {
			t.Errorf("%s: got %q, want %q (all: %v)", path, got[path], msg, got)
		}
	}
}

// The example configuration's demo gate observes nothing, and validate
// says so.
func TestExampleGateSaysWhatItCannotSee(t *testing.T) {
	b, err := os.ReadFile("../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	notes, warnings := GateNotes(cfg)
	if len(notes) == 0 || !strings.Contains(notes[0], "observes nothing (fixed)") || len(warnings) == 0 || !strings.Contains(warnings[0], "will get 401s") {
		t.Fatalf("notes %q warnings %q", notes, warnings)
	}
	p := GateProofs(cfg)[0]
	if len(p.Sees) != 0 || len(p.Blind) != len(rotator.Questions) {
		t.Fatalf("the fixed gate sees %v", p.Sees)
	}
}
