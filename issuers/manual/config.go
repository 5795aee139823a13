package manual

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/rekeyhq/rekey/issuers/internal/probe"
	"github.com/rekeyhq/rekey/issuers/internal/tmpl"
	"github.com/rekeyhq/rekey/issuers/internal/webapi"
)

// Config of a manual issuer.
type Config struct {
	// Pattern is a regular expression a submitted secret must match, e.g.
	// ^ka_live_[A-Za-z0-9]{32}$. Empty accepts any non-empty value.
	Pattern string `koanf:"pattern"`
	// MintInstructions tells a person how to mint the key: a template over
	// {{.Key}} {{.Name}} {{.Generation}} {{.RotationID}} {{.Params.x}} and
	// {{.Previous.Name}} {{.Previous.ID}} {{.Previous.Fingerprint}}, with
	// the functions list, short and json. Default DefaultMintInstructions.
	MintInstructions string `koanf:"mint_instructions"`
	// RevokeInstructions tells a person how to revoke a key: a template
	// over {{.Key}} {{.Name}} {{.Generation}} {{.ID}} {{.Fingerprint}}
	// {{.Params.x}}. Default DefaultRevokeInstructions.
	RevokeInstructions string `koanf:"revoke_instructions"`
	// EmergencyInstructions is the one message of a leak: revoke the
	// leaked key now and mint its replacement in the same visit. A
	// template over mint_instructions' fields, {{.Leaked.Name}}
	// {{.Leaked.Fingerprint}}, {{.Headline}} (LEAKED, UNEXPLAINED USE,
	// OWNER LEFT) and {{.Why}} ("is exposed"…). Default
	// DefaultEmergencyInstructions.
	EmergencyInstructions string `koanf:"emergency_instructions"`
	// DashboardURL is a deep link to the dashboard page where the person
	// acts, a template over {{.Key}} {{.Name}} (the credential to mint or
	// revoke) and {{.Params.x}}; every instruction shows it as
	// {{.DashboardURL}}. Empty: the instructions name the page instead.
	DashboardURL string `koanf:"dashboard_url"`
	// IDFrom says what rekey records as the issuer's id of a submitted key,
	// since it cannot see the dashboard's: "name" (default; the
	// deterministic name the instructions asked for) or "fingerprint"
	// ("sha256:" and the first 12 hex digits of the secret's SHA-256).
	IDFrom string `koanf:"id_from"`
	// Verify, when set, probes a submitted key before accepting it (and
	// serves Verify). Same shape as the http issuer's verify.
	Verify *probe.Config `koanf:"verify"`
}

// IDFrom values.
const (
	IDFromName        = "name"
	IDFromFingerprint = "fingerprint"
)

// DefaultConfig returns the defaults applied before the YAML is decoded.
func DefaultConfig() Config {
	return Config{
		MintInstructions:      DefaultMintInstructions,
		RevokeInstructions:    DefaultRevokeInstructions,
		EmergencyInstructions: DefaultEmergencyInstructions,
		IDFrom:                IDFromName,
	}
}

// Validate reports every configuration error, each starting with its field.
func (c Config) Validate() error {
	var errs []error
	if c.Pattern != "" {
		if _, err := regexp.Compile(c.Pattern); err != nil {
			errs = append(errs, fmt.Errorf("pattern: %w", err))
		}
	}
	for _, f := range [][2]string{{"mint_instructions", c.MintInstructions}, {"revoke_instructions", c.RevokeInstructions},
		{"emergency_instructions", c.EmergencyInstructions}, {"dashboard_url", c.DashboardURL}} {
		field, text := f[0], f[1]
		if text == "" {
			continue
		}
		t, err := tmpl.Parse(field, text)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
			continue
		}
		// A misspelt field (.Nmae) fails only when executed: try it.
		var sample any = mintData{Params: map[string]any{}}
		switch field {
		case "revoke_instructions":
			sample = revokeData{Params: map[string]any{}}
		case "emergency_instructions":
			sample = emergencyData{Params: map[string]any{}}
		case "dashboard_url":
			sample = dashboardData{Params: map[string]any{}}
		}
		if err := tmpl.CheckFields(t, sample); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
		}
	}
	switch c.IDFrom {
	case "", IDFromName, IDFromFingerprint:
	default:
		errs = append(errs, fmt.Errorf("id_from: must be %q or %q", IDFromName, IDFromFingerprint))
	}
	if c.Verify != nil {
		if err := c.Verify.Validate(); err != nil {
			errs = append(errs, webapi.Prefix("verify", err))
		}
		if c.Verify.URL != "" && !absoluteTemplate(c.Verify.URL) {
			errs = append(errs, errors.New("verify.url: must be an absolute http(s) URL (a manual issuer has no base_url)"))
		}
	}
	return errors.Join(errs...)
}

func absoluteTemplate(u string) bool {
	return regexp.MustCompile(`^(https?://|\{\{)`).MatchString(u)
}
