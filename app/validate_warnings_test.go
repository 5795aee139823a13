package app

import (
	"strings"
	"testing"

	"github.com/rekeyhq/rekey/config"
)

// verify: true that the issuer cannot honour is a warning of validate, not
// a silent skip.
func TestWarningsVerifyTheIssuerCannotHonour(t *testing.T) {
	yes := true
	cfg := &config.Config{
		Issuers: []config.Adapter{
			{Name: "iam", Type: "awsiam"},
			{Name: "dash", Type: "manual", Settings: map[string]any{}},
			{Name: "probed", Type: "manual", Settings: map[string]any{"verify": map[string]any{"url": "https://x/"}}},
			{Name: "rnd", Type: "random"},
		},
		Keys: []config.Key{
			{Name: "ci", Issuer: "iam", KeySettings: config.KeySettings{Verify: &yes}},
			{Name: "billing", Issuer: "dash", KeySettings: config.KeySettings{Verify: &yes}},
			{Name: "ok-manual", Issuer: "probed", KeySettings: config.KeySettings{Verify: &yes}},
			{Name: "ok-random", Issuer: "rnd", KeySettings: config.KeySettings{Verify: &yes}},
			{Name: "off", Issuer: "iam"},
		},
	}
	var got []string
	for _, w := range Warnings(cfg) {
		if strings.Contains(w, ".verify") {
			got = append(got, w)
		}
	}
	want := []string{
		"keys[0].verify: true, but issuer iam (awsiam) cannot verify a key (IAM offers no probe): key ci is delivered unverified",
		"keys[1].verify: true, but issuer dash (manual) has no verify probe configured: key billing is delivered unverified",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
