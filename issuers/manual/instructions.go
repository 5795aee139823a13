package manual

import (
	"fmt"

	"github.com/rekeyhq/rekey/issuers/internal/tmpl"
	"github.com/rekeyhq/rekey/rotator"
)

// The instructions a person follows: each says what to do in the dashboard
// by name (never by fingerprint alone), links the dashboard page when
// dashboard_url is set, gives the complete command with the rotation id,
// and says what not to do yet.

// mintData is what mint_instructions see.
type mintData struct {
	Key        string
	Name       string
	Generation int
	RotationID string
	Params     map[string]any
	Previous   rotator.CredentialRef
	// Emergency: Previous is being revoked now (a leak); the default text
	// then leaves out "do not revoke it yet".
	Emergency    bool
	DashboardURL string
}

// revokeData is what revoke_instructions see: what CredentialRef holds.
type revokeData struct {
	Key          string
	Name         string
	Generation   int
	ID           string
	Fingerprint  string
	RotationID   string
	Params       map[string]any
	DashboardURL string
}

// emergencyData is what emergency_instructions see: the replacement to
// mint (as in mint_instructions) and the leaked credential to revoke.
type emergencyData struct {
	Key          string
	Name         string
	Generation   int
	RotationID   string
	Params       map[string]any
	Leaked       rotator.CredentialRef
	Headline     string // LEAKED, UNEXPLAINED USE, OWNER LEFT
	Why          string // is exposed, is used by an unknown caller, was held by a person who left
	DashboardURL string
}

// dashboardData is what dashboard_url sees.
type dashboardData struct {
	Key    string
	Name   string
	Params map[string]any
}

// Default instructions.
const (
	dashboardLink = "in the dashboard{{with .DashboardURL}} ({{.}}){{else}} (Settings → API Keys){{end}}"
	mintSettings  = "{{with .Params.scopes}} with scopes {{list .}}{{end}}" +
		"{{with .Params.allowed_cluster_ids}} and cluster allow-list {{list .}}{{end}}"

	DefaultMintInstructions = "Mint a new API key named {{.Name}}" + mintSettings +
		"{{with .Previous.Name}} (the same settings as {{.}}){{end}} " + dashboardLink +
		", then run `rekey submit {{.RotationID}}` and paste the secret when asked." +
		"{{if not .Emergency}}{{with .Previous.Name}} Do not revoke {{.}} yet: consumers still use it; rekey tells you when it is safe.{{end}}{{end}}"
	DefaultRevokeInstructions = "Revoke the API key {{.Name}} " + dashboardLink +
		"{{with .Fingerprint}} (its fingerprint, to double-check: {{short .}}){{end}}" +
		", then run `rekey confirm {{.RotationID}}`. rekey probes the key first when a probe is configured, and refuses while it still works."
	DefaultEmergencyInstructions = "{{.Headline}}: the API key {{.Leaked.Name}} of {{.Key}} {{.Why}} and still works. " +
		"In one visit " + dashboardLink + ": (1) REVOKE {{.Leaked.Name}} now; (2) mint its replacement named {{.Name}}" + mintSettings +
		" (the same settings as {{.Leaked.Name}}). Then run `rekey confirm {{.RotationID}}` (you revoked it) and " +
		"`rekey submit {{.RotationID}}` (paste the new secret when asked), in either order: consumers get the replacement as soon as you submit it."
)

func (is *Issuer) dashboardURL(key, name string, params map[string]any) string {
	if is.dashboard == nil {
		return ""
	}
	out, err := tmpl.RenderText(is.dashboard, dashboardData{Key: key, Name: name, Params: params}, "")
	if err != nil {
		is.log.Warn("dashboard_url failed to render; instructions go without the link", "key", key, "err", err)
		return ""
	}
	return out
}

// MintInstructions renders mint_instructions for req.
func (is *Issuer) MintInstructions(req rotator.MintRequest) string {
	d := mintData{Key: req.Key, Name: req.Name, Generation: req.Generation, RotationID: req.RotationID, Params: req.Params, Previous: req.Previous,
		Emergency: req.Emergency, DashboardURL: is.dashboardURL(req.Key, req.Name, req.Params)}
	out, err := tmpl.RenderText(is.mint, d, "(not set)")
	if err != nil {
		is.log.Warn("mint_instructions failed to render; sending the fallback", "key", req.Key, "err", err)
		keep := " Do not revoke the old key yet."
		if req.Emergency {
			keep = ""
		}
		return fmt.Sprintf("Mint a new API key named %s for rekey key %s, then run `rekey submit %s` and paste the secret when asked.%s (mint_instructions failed: %v)",
			req.Name, req.Key, req.RotationID, keep, err)
	}
	return out
}

// RevokeInstructions renders revoke_instructions for ref.
func (is *Issuer) RevokeInstructions(ref rotator.CredentialRef) string {
	d := revokeData{Key: ref.Key, Name: ref.Name, Generation: ref.Generation, ID: ref.ID, Fingerprint: ref.Fingerprint, RotationID: ref.RotationID,
		Params: ref.Params, DashboardURL: is.dashboardURL(ref.Key, ref.Name, ref.Params)}
	out, err := tmpl.RenderText(is.revoke, d, "(not set)")
	if err != nil {
		is.log.Warn("revoke_instructions failed to render; sending the fallback", "key", ref.Key, "err", err)
		return fmt.Sprintf("Revoke the API key %s of rekey key %s in the dashboard, then run `rekey confirm %s`. (revoke_instructions failed: %v)",
			ref.Name, ref.Key, ref.RotationID, err)
	}
	return out
}

// EmergencyInstructions renders emergency_instructions: the one message of
// a leak, asking to revoke leaked and mint replacement in one visit.
func (is *Issuer) EmergencyInstructions(req rotator.EmergencyRequest) string {
	leaked, replacement := req.Leaked, req.Replacement
	d := emergencyData{Key: replacement.Key, Name: replacement.Name, Generation: replacement.Generation, RotationID: replacement.RotationID,
		Params: replacement.Params, Leaked: leaked, Headline: req.Headline, Why: req.Why, DashboardURL: is.dashboardURL(leaked.Key, leaked.Name, replacement.Params)}
	out, err := tmpl.RenderText(is.emergency, d, "(not set)")
	if err != nil {
		is.log.Warn("emergency_instructions failed to render; sending the fallback", "key", leaked.Key, "err", err)
		return fmt.Sprintf("%s: revoke the API key %s of %s NOW and mint its replacement %s in the same visit, then run `rekey confirm %s` and `rekey submit %s` in either order. (emergency_instructions failed: %v)",
			req.Headline, leaked.Name, leaked.Key, replacement.Name, replacement.RotationID, replacement.RotationID, err)
	}
	return out
}
