package manual_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rekeyhq/rekey/issuers/internal/probe"
	"github.com/rekeyhq/rekey/issuers/manual"
	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/testing/kubeadapt"
)

const kaPattern = `^ka_live_[A-Za-z0-9]{32}$`

func newIssuer(t *testing.T, edit func(*manual.Config)) *manual.Issuer {
	t.Helper()
	cfg := manual.DefaultConfig()
	cfg.Pattern = kaPattern
	if edit != nil {
		edit(&cfg)
	}
	is, err := manual.New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return is
}

var req = rotator.MintRequest{
	Key: "kubeadapt-ci", Name: "kubeadapt-ci-v3", Generation: 3, RotationID: "rot-42",
	Params:   map[string]any{"scopes": []any{"clusters:read", "costs:read"}, "allowed_cluster_ids": []any{"prod-eu-1"}},
	Previous: rotator.CredentialRef{Name: "kubeadapt-ci-v2", ID: "kubeadapt-ci-v2", Fingerprint: strings.Repeat("ab", 32)},
}

func assertNoLeak(t *testing.T, err error, secret string) {
	t.Helper()
	if err != nil && secret != "" && strings.Contains(err.Error(), secret) {
		t.Errorf("error leaks the submitted value: %v", err)
	}
}

func TestAcceptPattern(t *testing.T) {
	valid := kubeadapt.SecretPrefix + strings.Repeat("x", 32)
	tests := map[string]struct {
		value    string
		ok       bool
		contains []string
	}{
		"valid":                   {value: valid, ok: true},
		"valid with white space":  {value: "  " + valid + "\n", ok: true},
		"too short":               {value: "ka_live_abcd", contains: []string{"does not match the pattern " + kaPattern, "(length 12)"}},
		"wrong prefix":            {value: "ka_test_" + strings.Repeat("y", 32), contains: []string{"does not match the pattern", "(length 40)"}},
		"not base62":              {value: kubeadapt.SecretPrefix + strings.Repeat("-", 32), contains: []string{"(length 40)"}},
		"another service's token": {value: "ghp_" + strings.Repeat("Z", 36), contains: []string{"does not match"}},
		"empty":                   {value: " \n", contains: []string{"is empty"}},
		"control characters":      {value: "ka_live_\x00abc" + strings.Repeat("q", 29), contains: []string{"control characters"}},
	}
	is := newIssuer(t, nil)
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m, err := is.Accept(context.Background(), req, rotator.NewSecret(tc.value))
			if tc.ok {
				if err != nil {
					t.Fatalf("Accept: %v", err)
				}
				if m.ID != req.Name || m.Secret.Reveal() != strings.TrimSpace(tc.value) {
					t.Fatalf("Accept = %q, want id %q and the trimmed value", m.ID, req.Name)
				}
				return
			}
			if err == nil {
				t.Fatal("Accept: nil error, want a refusal")
			}
			assertNoLeak(t, err, strings.TrimSpace(tc.value))
			if !rotator.IsPermanent(err) || rotator.ReasonOf(err) != rotator.ReasonInvalid {
				t.Errorf("refusal classified %v/%s, want permanent invalid", rotator.IsPermanent(err), rotator.ReasonOf(err))
			}
			for _, c := range tc.contains {
				if !strings.Contains(err.Error(), c) {
					t.Errorf("error %q does not contain %q", err, c)
				}
			}
		})
	}
}

func TestAcceptRunsTheProbe(t *testing.T) {
	const adminToken = "admin-token-for-manual-tests"
	ka := kubeadapt.New(kubeadapt.Options{AdminToken: adminToken})
	ts := httptest.NewServer(ka)
	t.Cleanup(ts.Close)
	_, good, err := ka.CreateKey(kubeadapt.KeyRequest{Name: req.Name, Scopes: []string{kubeadapt.ScopeClustersRead}})
	if err != nil {
		t.Fatal(err)
	}
	_, costsOnly, _ := ka.CreateKey(kubeadapt.KeyRequest{Name: "costs", Scopes: []string{kubeadapt.ScopeCostsRead}})
	revokedInfo, revoked, _ := ka.CreateKey(kubeadapt.KeyRequest{Name: "old", Scopes: []string{kubeadapt.ScopeClustersRead}})
	if _, err := ka.Revoke(revokedInfo.ID); err != nil {
		t.Fatal(err)
	}

	var logs bytes.Buffer
	cfg := manual.DefaultConfig()
	cfg.Pattern = kaPattern
	cfg.IDFrom = manual.IDFromFingerprint
	cfg.Verify = &probe.Config{URL: ts.URL + "/v1/clusters", Expect: []any{200}}
	is, err := manual.New(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}

	tests := map[string]struct {
		secret   string
		ok       bool
		reason   rotator.Reason
		contains []string
	}{
		"working key accepted":  {secret: good, ok: true},
		"unknown key refused":   {secret: kubeadapt.SecretPrefix + strings.Repeat("Q", 32), reason: rotator.ReasonAuth, contains: []string{"refused by the verify probe", "HTTP 401"}},
		"revoked key refused":   {secret: revoked, reason: rotator.ReasonAuth, contains: []string{"HTTP 401"}},
		"key lacking the scope": {secret: costsOnly, reason: rotator.ReasonAuth, contains: []string{"HTTP 403"}},
		"pattern checked first": {secret: "ka_live_short", reason: rotator.ReasonInvalid, contains: []string{"does not match"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m, err := is.Accept(context.Background(), req, rotator.NewSecret(tc.secret))
			assertNoLeak(t, err, tc.secret)
			if tc.ok {
				if err != nil {
					t.Fatalf("Accept: %v", err)
				}
				want := "sha256:" + rotator.ShortFingerprint(rotator.Fingerprint(tc.secret))
				if m.ID != want {
					t.Errorf("id = %q, want %q (id_from: fingerprint)", m.ID, want)
				}
				return
			}
			if err == nil || !rotator.IsPermanent(err) || rotator.ReasonOf(err) != tc.reason {
				t.Fatalf("Accept: %v, want a permanent %s refusal", err, tc.reason)
			}
			for _, c := range tc.contains {
				if !strings.Contains(err.Error(), c) {
					t.Errorf("error %q does not contain %q", err, c)
				}
			}
		})
	}
	// The probe also serves Verify.
	if err := is.Verify(context.Background(), req.Key, rotator.NewSecret(good), nil); err != nil {
		t.Errorf("Verify(good): %v", err)
	}
	ka.SetAdminDown(true) // the admin API only: the data API still answers
	if err := is.Verify(context.Background(), req.Key, rotator.NewSecret(revoked), nil); err == nil {
		t.Error("Verify(revoked): nil")
	}
	for _, s := range []string{good, revoked, costsOnly} {
		if strings.Contains(logs.String(), s) {
			t.Errorf("logs leak a secret: %s", logs.String())
		}
	}
}

func TestInstructions(t *testing.T) {
	ref := rotator.CredentialRef{Key: "kubeadapt-ci", RotationID: "rot-42", Name: "kubeadapt-ci-v2", Generation: 2, ID: "kubeadapt-ci-v2", Fingerprint: strings.Repeat("0123456789", 6) + "abcd"}
	tests := map[string]struct {
		cfg           func(*manual.Config)
		req           rotator.MintRequest
		wantMint      string
		wantRevoke    string
		wantEmergency string
	}{
		"defaults": {
			req: req,
			wantMint: "Mint a new API key named kubeadapt-ci-v3 with scopes clusters:read, costs:read and cluster allow-list prod-eu-1" +
				" (the same settings as kubeadapt-ci-v2) in the dashboard (Settings → API Keys), then run `rekey submit rot-42` and paste the secret when asked." +
				" Do not revoke kubeadapt-ci-v2 yet: consumers still use it; rekey tells you when it is safe.",
			wantRevoke: "Revoke the API key kubeadapt-ci-v2 in the dashboard (Settings → API Keys) (its fingerprint, to double-check: 012345678901)," +
				" then run `rekey confirm rot-42`. rekey probes the key first when a probe is configured, and refuses while it still works.",
			wantEmergency: "LEAKED: the API key kubeadapt-ci-v2 of kubeadapt-ci is exposed and still works. In one visit in the dashboard (Settings → API Keys):" +
				" (1) REVOKE kubeadapt-ci-v2 now; (2) mint its replacement named kubeadapt-ci-v3 with scopes clusters:read, costs:read and cluster allow-list prod-eu-1" +
				" (the same settings as kubeadapt-ci-v2). Then run `rekey confirm rot-42` (you revoked it) and `rekey submit rot-42` (paste the new secret when asked)," +
				" in either order: consumers get the replacement as soon as you submit it.",
		},
		"dashboard deep link": {
			cfg: func(c *manual.Config) {
				c.DashboardURL = "https://app.kubeadapt.example/settings/api-keys?search={{.Name}}"
			},
			req: req,
			wantMint: "Mint a new API key named kubeadapt-ci-v3 with scopes clusters:read, costs:read and cluster allow-list prod-eu-1" +
				" (the same settings as kubeadapt-ci-v2) in the dashboard (https://app.kubeadapt.example/settings/api-keys?search=kubeadapt-ci-v3), then run `rekey submit rot-42` and paste the secret when asked." +
				" Do not revoke kubeadapt-ci-v2 yet: consumers still use it; rekey tells you when it is safe.",
			wantRevoke: "Revoke the API key kubeadapt-ci-v2 in the dashboard (https://app.kubeadapt.example/settings/api-keys?search=kubeadapt-ci-v2) (its fingerprint, to double-check: 012345678901)," +
				" then run `rekey confirm rot-42`. rekey probes the key first when a probe is configured, and refuses while it still works.",
		},
		// A leak: the previous key is being revoked now, so the mint text
		// (the wait for the replacement after confirm-first) never says to
		// keep it.
		"emergency replacement": {
			req: func() rotator.MintRequest { r := req; r.Emergency = true; return r }(),
			wantMint: "Mint a new API key named kubeadapt-ci-v3 with scopes clusters:read, costs:read and cluster allow-list prod-eu-1" +
				" (the same settings as kubeadapt-ci-v2) in the dashboard (Settings → API Keys), then run `rekey submit rot-42` and paste the secret when asked.",
		},
		"emergency fallback": {
			cfg:      func(c *manual.Config) { c.MintInstructions = "{{index .Params.scopes 7}}" },
			req:      func() rotator.MintRequest { r := req; r.Emergency = true; return r }(),
			wantMint: "Mint a new API key named kubeadapt-ci-v3 for rekey key kubeadapt-ci, then run `rekey submit rot-42` and paste the secret when asked. (mint_instructions failed: render template mint_instructions: template: mint_instructions:1:2: executing \"mint_instructions\" at <index .Params.scopes 7>)",
		},
		"defaults without params": {
			req:      rotator.MintRequest{Key: "k", Name: "k-v1", RotationID: "rot-1"},
			wantMint: "Mint a new API key named k-v1 in the dashboard (Settings → API Keys), then run `rekey submit rot-1` and paste the secret when asked.",
		},
		"custom with a missing param": {
			cfg: func(c *manual.Config) {
				c.MintInstructions = "Create {{.Name}} with {{.Params.scopes}} / {{.Params.team}} then `rekey submit {{.RotationID}}`"
				c.RevokeInstructions = "Delete {{.ID}} ({{short .Fingerprint}}) for {{.Key}} gen {{.Generation}}"
			},
			req:        req,
			wantMint:   "Create kubeadapt-ci-v3 with [clusters:read costs:read] / (not set) then `rekey submit rot-42`",
			wantRevoke: "Delete kubeadapt-ci-v2 (012345678901) for kubeadapt-ci gen 2",
		},
		"runtime failure falls back": {
			cfg:      func(c *manual.Config) { c.MintInstructions = "{{index .Params.scopes 7}}" },
			req:      req,
			wantMint: "Mint a new API key named kubeadapt-ci-v3 for rekey key kubeadapt-ci, then run `rekey submit rot-42` and paste the secret when asked. Do not revoke the old key yet. (mint_instructions failed: render template mint_instructions: template: mint_instructions:1:2: executing \"mint_instructions\" at <index .Params.scopes 7>)",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			is := newIssuer(t, tc.cfg)
			if got := is.MintInstructions(tc.req); got != tc.wantMint {
				t.Errorf("MintInstructions =\n%s\nwant\n%s", got, tc.wantMint)
			}
			if tc.wantRevoke != "" {
				if got := is.RevokeInstructions(ref); got != tc.wantRevoke {
					t.Errorf("RevokeInstructions =\n%s\nwant\n%s", got, tc.wantRevoke)
				}
			}
			if tc.wantEmergency != "" {
				if got := is.EmergencyInstructions(rotator.EmergencyRequest{Leaked: ref, Replacement: tc.req, Headline: "LEAKED", Why: "is exposed"}); got != tc.wantEmergency {
					t.Errorf("EmergencyInstructions =\n%s\nwant\n%s", got, tc.wantEmergency)
				}
			}
		})
	}
}

func TestMintAndRevokeNeedAPerson(t *testing.T) {
	is := newIssuer(t, nil)
	_, err := is.Mint(context.Background(), req)
	if !errors.Is(err, manual.ErrHumanRequired) || !rotator.IsPermanent(err) {
		t.Errorf("Mint: %v, want a permanent ErrHumanRequired", err)
	}
	err = is.Revoke(context.Background(), req.Previous)
	if !errors.Is(err, manual.ErrHumanRequired) || !rotator.IsPermanent(err) {
		t.Errorf("Revoke: %v, want a permanent ErrHumanRequired", err)
	}
	err = is.Verify(context.Background(), "k", rotator.NewSecret("x"), nil)
	if err == nil || !rotator.IsPermanent(err) || !strings.Contains(err.Error(), "no verify probe configured") {
		t.Errorf("Verify without a probe: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := map[string]struct {
		edit func(*manual.Config)
		want []string
	}{
		"defaults":        {edit: func(*manual.Config) {}},
		"zero config":     {edit: func(c *manual.Config) { *c = manual.Config{} }},
		"bad pattern":     {edit: func(c *manual.Config) { c.Pattern = "^ka_(" }, want: []string{"pattern: "}},
		"unparsable":      {edit: func(c *manual.Config) { c.MintInstructions = "{{.Name" }, want: []string{"mint_instructions: invalid template"}},
		"misspelt field":  {edit: func(c *manual.Config) { c.RevokeInstructions = "revoke {{.Nmae}}" }, want: []string{"revoke_instructions: template revoke_instructions: "}},
		"rotation id":     {edit: func(c *manual.Config) { c.RevokeInstructions = "{{.RotationID}}" }},
		"bad dashboard":   {edit: func(c *manual.Config) { c.DashboardURL = "https://x/{{.Nmae}}" }, want: []string{"dashboard_url: "}},
		"bad emergency":   {edit: func(c *manual.Config) { c.EmergencyInstructions = "{{.Leaked.Nmae}}" }, want: []string{"emergency_instructions: "}},
		"bad id_from":     {edit: func(c *manual.Config) { c.IDFrom = "dashboard" }, want: []string{"id_from: "}},
		"relative probe":  {edit: func(c *manual.Config) { c.Verify = &probe.Config{URL: "/v1/clusters"} }, want: []string{"verify.url: must be an absolute"}},
		"probe value":     {edit: func(c *manual.Config) { c.Verify = &probe.Config{URL: "https://x/", Value: "Bearer"} }, want: []string{"verify.value: must use {{.Secret}}"}},
		"templated probe": {edit: func(c *manual.Config) { c.Verify = &probe.Config{URL: "{{.Params.api}}/v1/clusters", Not: []any{401}} }},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := manual.DefaultConfig()
			tc.edit(&c)
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: nil, want %v", tc.want)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Errorf("got %d errors, want %d: %v", len(lines), len(tc.want), err)
			}
			for i, w := range tc.want {
				if i < len(lines) && !strings.HasPrefix(lines[i], w) {
					t.Errorf("error %d = %q, want prefix %q", i, lines[i], w)
				}
			}
		})
	}
}

// TestCheckRevoked: a confirmation is taken only when the probe is refused
// with 401; a working key, or an answer that says nothing about the key,
// is not proof of a revocation.
func TestCheckRevoked(t *testing.T) {
	ka := kubeadapt.New(kubeadapt.Options{AdminToken: "admin-token-for-manual-tests"})
	ts := httptest.NewServer(ka)
	t.Cleanup(ts.Close)
	_, live, _ := ka.CreateKey(kubeadapt.KeyRequest{Name: "live", Scopes: []string{kubeadapt.ScopeClustersRead}})
	_, costsOnly, _ := ka.CreateKey(kubeadapt.KeyRequest{Name: "costs", Scopes: []string{kubeadapt.ScopeCostsRead}})
	oldInfo, old, _ := ka.CreateKey(kubeadapt.KeyRequest{Name: "old", Scopes: []string{kubeadapt.ScopeClustersRead}})
	if _, err := ka.Revoke(oldInfo.ID); err != nil {
		t.Fatal(err)
	}
	is := newIssuer(t, func(c *manual.Config) { c.Verify = &probe.Config{URL: ts.URL + "/v1/clusters", Expect: []any{200}} })
	tests := map[string]struct {
		secret  string
		revoked bool
		err     bool
	}{
		"still authenticates":      {secret: live},
		"revoked":                  {secret: old, revoked: true},
		"403 says the key is live": {secret: costsOnly, err: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			revoked, err := is.CheckRevoked(context.Background(), "k", rotator.NewSecret(tc.secret), nil)
			if revoked != tc.revoked || (err != nil) != tc.err {
				t.Fatalf("CheckRevoked = %v, %v; want revoked %v, error %v", revoked, err, tc.revoked, tc.err)
			}
			assertNoLeak(t, err, tc.secret)
		})
	}
	if _, err := newIssuer(t, nil).CheckRevoked(context.Background(), "k", rotator.NewSecret(live), nil); err == nil {
		t.Error("CheckRevoked without a probe: nil error, want one (it cannot tell)")
	}
}
