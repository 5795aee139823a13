package manual_test

import (
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/rekeyhq/rekey/issuers/manual"
	"github.com/rekeyhq/rekey/rotator"
)

var updateRunbook = flag.Bool("update-runbook", false, "rewrite the messages in docs/MANUAL-ISSUER.md from the default templates")

// TestRunbookShowsTheRealMessages: every message docs/MANUAL-ISSUER.md
// shows in a box is what the default templates render, so the runbook an
// on-call engineer reads cannot drift from what they receive.
func TestRunbookShowsTheRealMessages(t *testing.T) {
	const path = "../../docs/MANUAL-ISSUER.md"
	cfg := manual.DefaultConfig()
	cfg.DashboardURL = "https://app.kubeadapt.io/settings/api-keys?search={{.Name}}"
	is, err := manual.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	params := map[string]any{"scopes": []any{"clusters:read", "costs:read"}, "allowed_cluster_ids": []any{"prod-eu-1"}}
	old := rotator.CredentialRef{Key: "kubeadapt-billing", RotationID: "rot_0123abcd4567ef89", Name: "kubeadapt-billing-v3", Generation: 3,
		ID: "kubeadapt-billing-v3", Fingerprint: rotator.Fingerprint("hello"), Params: params}
	mint := rotator.MintRequest{Key: "kubeadapt-billing", Name: "kubeadapt-billing-v4", Generation: 4, RotationID: "rot_0123abcd4567ef89", Params: params, Previous: old}
	want := map[string]string{
		"mint":      is.MintInstructions(mint),
		"revoke":    is.RevokeInstructions(old),
		"emergency": is.EmergencyInstructions(rotator.EmergencyRequest{Leaked: old, Replacement: mint, Headline: "LEAKED", Why: "is exposed"}),
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	re := regexp.MustCompile("(?s)<!-- message:([a-z]+) -->\n```text\n(.*?)\n```\n<!-- end -->")
	seen := map[string]bool{}
	out := re.ReplaceAllStringFunc(doc, func(block string) string {
		m := re.FindStringSubmatch(block)
		name, got := m[1], m[2]
		seen[name] = true
		w, ok := want[name]
		if !ok {
			t.Errorf("the runbook shows an unknown message %q", name)
			return block
		}
		if got != w && !*updateRunbook {
			t.Errorf("the runbook's %s message differs from the template; run: go test ./issuers/manual -run TestRunbook -update-runbook\n doc:  %s\n real: %s", name, got, w)
		}
		return "<!-- message:" + name + " -->\n```text\n" + w + "\n```\n<!-- end -->"
	})
	for name := range want {
		if !seen[name] {
			t.Errorf("the runbook does not show the %s message", name)
		}
	}
	if *updateRunbook && out != doc {
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Contains(doc, "--as") {
		t.Error("the runbook tells people to name themselves (--as): identities come from authentication")
	}
}
