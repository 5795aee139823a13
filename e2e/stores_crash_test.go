package e2e

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

// frozen checks what a consumer and the stores hold while the daemon lies
// dead at failpoint fp, and returns the new key when the stores already
// hold it ("" when nothing was delivered yet).
func (w *storeWorld) frozen(ctx context.Context, fp, oldV string) string {
	w.t.Helper()
	t, k, tg := w.t, w.kit, w.tg
	cur := k.mustCurrent(ctx, tg)
	data, err := k.vaultData(ctx, tg.vault)
	if err != nil {
		t.Fatal(err)
	}
	labels := k.awsLabels(ctx, tg.aws)
	str := func(f string) string { s, _ := data[f].(string); return s }
	awsAt := func(label string) string {
		if _, ok := labels[label]; !ok {
			return ""
		}
		v, err := k.awsValue(ctx, tg.aws, label)
		if err != nil {
			t.Fatalf("secrets manager %s: read %s: %v", tg.aws, label, err)
		}
		return v
	}
	switch fp {
	case "minting:before", "minting:after", "staging:before":
		// Nothing delivered: the old key alone.
		if cur != oldV || len(data) != 1 || awsAt("AWSPENDING") != "" || awsAt("AWSPREVIOUS") != "" {
			t.Fatalf("at %s the stores hold more than the old key: vault fields %v, labels %v", fp, slices.Sorted(maps.Keys(data)), labels)
		}
		return ""
	case "staging:after", "verifying:before", "cutting_over:before":
		// Staged beside the old key, which consumers still read.
		pend := str(vaultFieldPending)
		if cur != oldV || pend == "" || pend == oldV || str(vaultFieldPrevious) != "" || awsAt("AWSPENDING") != pend {
			t.Fatalf("at %s want the old key current and the new one pending in both stores: vault fields %v, labels %v", fp, slices.Sorted(maps.Keys(data)), labels)
		}
		return pend
	default:
		// Cut over: the new key current, the old one previous.
		if cur == oldV || str(vaultFieldPrevious) != oldV || str(vaultFieldPending) != "" ||
			awsAt("AWSPREVIOUS") != oldV || labels["AWSPENDING"] != "" {
			t.Fatalf("at %s want the new key current and the old one previous in both stores: vault fields %v, labels %v", fp, slices.Sorted(maps.Keys(data)), labels)
		}
		if got, want := w.oldRevoked(), fp == "revoking:after" || fp == "cleaning:before"; got != want {
			t.Fatalf("at %s the old credential revoked=%v, want %v", fp, got, want)
		}
		return cur
	}
}

// Invariants 1, 2 and 4 with both sinks: SIGKILL at every phase boundary
// of a staged rotation, then a restart. While the daemon lies dead the
// stores hold exactly what that boundary promises (a consumer reads the
// old key until cut-over, the new one after); after the restart every run
// ends as an uninterrupted one does: the same Vault version count and
// Secrets Manager version count, nothing pending or previous, exactly one
// live credential — and a key that was already staged is resumed, not
// minted again.
func TestStoresCrashAtEveryPhaseBoundary(t *testing.T) {
	t.Parallel()
	kit := newStoreKit(t)
	points := []string{
		"minting:before", "minting:after",
		"staging:before", "staging:after",
		"verifying:before",
		"cutting_over:before", "cutting_over:after",
		"revoking:before", "revoking:after",
		"cleaning:before",
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
			id := w.rotateCLI()
			staged := ""
			if fp != "" {
				if !d.waitKilled(t, 20*time.Second) {
					t.Fatalf("the daemon was not killed at %s", fp)
				}
				if !strings.Contains(readFile(t, d.log), `"failpoint":"`+fp+`"`) {
					t.Fatalf("killed, but not at the failpoint %s", fp)
				}
				staged = w.frozen(c, fp, oldV)
				d = w.startDaemon()
			}
			got := w.waitRotation(id, 30*time.Second)
			d.stop()
			if got.Phase != "done" {
				t.Fatalf("rotation ended %s: %s %s", got.Phase, got.Outcome, got.LastError)
			}
			newV := w.kit.mustCurrent(c, w.tg)
			if newV == oldV {
				t.Fatal("the rotation did not change the current value")
			}
			if staged != "" && newV != staged {
				t.Fatal("the restarted daemon delivered another key than the one already in the stores")
			}
			w.checkEnd(c, newV)
			w.scanForSecrets()
		})
	}
}
