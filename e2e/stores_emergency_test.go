package e2e

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// An emergency with both sinks, SIGKILLed at every boundary of its table
// and restarted. The old key is revoked first; the replacement is written
// straight as the only, current value (no pending step a consumer could
// fall between, no clean-up): while the daemon lies dead the stores hold
// the old (revoked) key alone or the replacement alone, and every run ends
// with the replacement current in both stores, nothing else in Vault, no
// AWSPENDING beside it in Secrets Manager, exactly one live credential,
// and — when the stores already held the replacement — that same key.
func TestStoresEmergencyCrashAtEveryPhaseBoundary(t *testing.T) {
	t.Parallel()
	kit := newStoreKit(t)
	points := []string{
		"revoking:before", "revoking:after",
		"minting:before", "minting:after",
		"staging:before", "staging:after",
		"verifying:before",
		"", // uninterrupted, for comparison
	}
	for _, fp := range points {
		name := fp
		if name == "" {
			name = "uninterrupted"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := ctx(t)
			n := storeName(t)
			w := kit.world(t, storeTarget{vault: n, aws: n}, storesOpts{})
			d := w.startDaemon()
			w.bootstrap("api")
			oldV := w.kit.mustCurrent(c, w.tg)
			d.stop()
			var env []string
			if fp != "" {
				env = append(env, "REKEY_FAILPOINT="+fp)
			}
			d = w.startDaemon(env...)
			id := w.emergencyCLI()
			delivered := ""
			if fp != "" {
				if !d.waitKilled(t, 20*time.Second) {
					t.Fatalf("the daemon was not killed at %s", fp)
				}
				if !strings.Contains(readFile(t, d.log), `"failpoint":"`+fp+`"`) {
					t.Fatalf("killed, but not at the failpoint %s", fp)
				}
				delivered = w.frozenEmergency(c, fp, oldV)
				d = w.startDaemon()
			}
			got := w.waitRotation(id, 30*time.Second)
			d.stop()
			if got.Phase != "done" {
				t.Fatalf("rotation ended %s: %s %s", got.Phase, got.Outcome, got.LastError)
			}
			newV := w.kit.mustCurrent(c, w.tg)
			if newV == oldV {
				t.Fatal("the emergency did not change the current value")
			}
			if delivered != "" && newV != delivered {
				t.Fatal("the restarted daemon delivered another key than the one already in the stores")
			}
			w.checkEmergencyEnd(c, oldV, newV)
			w.scanForSecrets()
		})
	}
}

// emergencyCLI starts an emergency rotation of api with the CLI.
func (w *storeWorld) emergencyCLI() string {
	w.t.Helper()
	out, code := w.cliStdout("", "rotate", "api", "--emergency", "--reason", "stores e2e", "-o", "json")
	if code != 0 {
		w.t.Fatalf("rotate --emergency: exit %d: %s", code, out)
	}
	var r rotationView
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		w.t.Fatal(err)
	}
	return r.ID
}

// frozenEmergency checks the stores while the daemon lies dead at fp and
// returns the replacement when they already hold it.
func (w *storeWorld) frozenEmergency(ctx context.Context, fp, oldV string) string {
	w.t.Helper()
	t := w.t
	cur := w.kit.mustCurrent(ctx, w.tg)
	data, err := w.kit.vaultData(ctx, w.tg.vault)
	if err != nil {
		t.Fatal(err)
	}
	labels := w.kit.awsLabels(ctx, w.tg.aws)
	if len(data) != 1 {
		t.Fatalf("at %s vault holds fields %v, want the current one only", fp, slices.Sorted(maps.Keys(data)))
	}
	if got, want := w.oldRevoked(), fp != "revoking:before"; got != want {
		t.Fatalf("at %s the old credential revoked=%v, want %v", fp, got, want)
	}
	switch fp {
	case "staging:after", "verifying:before":
		if cur == oldV {
			t.Fatalf("at %s the stores still hold the old key", fp)
		}
		return cur
	}
	if cur != oldV || labels["AWSPENDING"] != "" && labels["AWSPENDING"] != labels["AWSCURRENT"] {
		t.Fatalf("at %s want the old key alone in both stores: labels %v", fp, labels)
	}
	return ""
}

// checkEmergencyEnd checks a finished emergency: the replacement the only
// value in Vault, current in Secrets Manager with nothing pending beside
// it (AWSPREVIOUS, when left, names the revoked key), the only live
// credential at the issuer, and the audit chain intact.
func (w *storeWorld) checkEmergencyEnd(ctx context.Context, oldV, newV string) {
	w.t.Helper()
	t := w.t
	data, err := w.kit.vaultData(ctx, w.tg.vault)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != 1 || data[vaultFieldCurrent] != newV {
		t.Fatalf("vault holds fields %v, want only %s", slices.Sorted(maps.Keys(data)), vaultFieldCurrent)
	}
	labels := w.kit.awsLabels(ctx, w.tg.aws)
	if p, ok := labels["AWSPENDING"]; ok && p != labels["AWSCURRENT"] {
		t.Fatalf("secrets manager: AWSPENDING on %s beside the current version %s", p, labels["AWSCURRENT"])
	}
	if _, ok := labels["AWSPREVIOUS"]; ok {
		prev, err := w.kit.awsValue(ctx, w.tg.aws, "AWSPREVIOUS")
		if err != nil {
			t.Fatal(err)
		}
		if prev != oldV {
			t.Fatal("secrets manager: AWSPREVIOUS names another value than the revoked key")
		}
	}
	live := 0
	for _, c := range w.ledger() {
		if c.RevokedAt == "" {
			live++
			if c.Fingerprint != rotator.Fingerprint(newV) {
				t.Fatalf("orphan: %s is live at the issuer but is not the delivered key", c.Name)
			}
		}
	}
	if live != 1 {
		t.Fatalf("%d live credentials at the issuer, want exactly 1", live)
	}
	if out, code := w.cli("", "audit", "verify"); code != 0 {
		t.Fatalf("audit verify: exit %d: %s", code, out)
	}
}
