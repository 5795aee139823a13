package e2e

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rekeyhq/rekey/rotator"
)

// A sink that hangs mid-rotation (SIGSTOP: connections accepted, never
// answered): the step times out and is retried with attempts counted and
// the error recorded, the old credential is not revoked while a sink
// lacks the new key as current, and once the sink answers again the
// rotation completes with the end state of an uninterrupted run.
func TestStoresSinkOutage(t *testing.T) {
	t.Parallel()
	// Secrets Manager hangs at cut-over: the daemon is stopped right
	// before it (failpoint cutting_over:before, the new key staged in both
	// stores), moto is paused, and the restarted daemon promotes in Vault
	// but cannot in Secrets Manager.
	t.Run("secrets-mgr-at-cut-over", func(t *testing.T) {
		t.Parallel()
		kit := newStoreKit(t)
		c := ctx(t)
		n := storeName(t)
		w := kit.world(t, storeTarget{vault: n, aws: n}, storesOpts{})
		d := w.startDaemon()
		w.bootstrap("api")
		oldV := kit.mustCurrent(c, w.tg)
		d.stop()
		d = w.startDaemon("REKEY_FAILPOINT=cutting_over:before")
		id := w.rotateCLI()
		if !d.waitKilled(t, 20*time.Second) {
			t.Fatal("the daemon was not killed before cut-over")
		}
		newV := w.frozen(c, "cutting_over:before", oldV)

		if err := kit.moto.Pause(); err != nil {
			t.Fatal(err)
		}
		paused := true
		t.Cleanup(func() {
			if paused {
				_ = kit.moto.Resume()
			}
		})
		pausedAt := time.Now()
		d = w.startDaemon()
		r := w.waitPhase(id, "retried twice while Secrets Manager hangs", 30*time.Second, func(r storeRotation) bool {
			if r.Phase != "cutting_over" {
				t.Fatalf("rotation left cut-over while Secrets Manager hangs: %+v", r)
			}
			if w.oldRevoked() {
				t.Fatal("the old credential was revoked while Secrets Manager lacks the new key")
			}
			return r.Attempts >= 2 && time.Since(pausedAt) > 3*time.Second
		})
		if r.LastError == "" || !strings.Contains(r.LastError, "sink aws") || !strings.Contains(r.LastError, n) {
			t.Fatalf("last_error %q does not name the sink and the secret", r.LastError)
		}
		// Vault, which answers, already has the new key current; the
		// consumer of Secrets Manager still reads the old one (checked
		// after the resume: moto cannot answer now).
		if v, err := kit.vaultCurrent(c, n); err != nil || v != newV {
			t.Fatalf("vault during the outage: err %v, new key current %v", err, v == newV)
		}
		t.Logf("paused %s: %d attempts, last error %q", time.Since(pausedAt).Round(time.Millisecond), r.Attempts, r.LastError)
		if err := kit.moto.Resume(); err != nil {
			t.Fatal(err)
		}
		paused = false
		got := w.waitRotation(id, 30*time.Second)
		d.stop()
		if got.Phase != "done" {
			t.Fatalf("rotation ended %s: %s %s", got.Phase, got.Outcome, got.LastError)
		}
		w.checkEnd(c, newV)
		w.scanForSecrets()
	})
	// Vault hangs while the rotation drains: the revoke step must re-read
	// every sink first (invariant 1), cannot, and retries without revoking.
	t.Run("vault-before-revoke", func(t *testing.T) {
		t.Parallel()
		kit := newStoreKit(t)
		c := ctx(t)
		n := storeName(t)
		w := kit.world(t, storeTarget{vault: n, aws: n}, storesOpts{quiet: "1500ms"})
		d := w.startDaemon()
		w.bootstrap("api")
		oldV := kit.mustCurrent(c, w.tg)
		id := w.rotate()
		w.waitPhase(id, "draining", 20*time.Second, func(r storeRotation) bool { return r.Phase == "draining" })
		newV := kit.mustCurrent(c, w.tg)
		if newV == oldV {
			t.Fatal("draining without the new key current")
		}
		if err := kit.vault.Pause(); err != nil {
			t.Fatal(err)
		}
		paused := true
		t.Cleanup(func() {
			if paused {
				_ = kit.vault.Resume()
			}
		})
		pausedAt := time.Now()
		r := w.waitPhase(id, "retrying the revoke while Vault hangs", 30*time.Second, func(r storeRotation) bool {
			if r.Phase != "draining" && r.Phase != "revoking" {
				t.Fatalf("rotation went past the revoke while Vault hangs: %+v", r)
			}
			if w.oldRevoked() {
				t.Fatal("the old credential was revoked while Vault could not be read")
			}
			return r.Phase == "revoking" && r.Attempts >= 1 && time.Since(pausedAt) > 3*time.Second
		})
		if !strings.Contains(r.LastError, "sink vault") || !strings.Contains(r.LastError, n) {
			t.Fatalf("last_error %q does not name the sink and the secret", r.LastError)
		}
		t.Logf("paused %s: %d attempts, last error %q", time.Since(pausedAt).Round(time.Millisecond), r.Attempts, r.LastError)
		if err := kit.vault.Resume(); err != nil {
			t.Fatal(err)
		}
		paused = false
		got := w.waitRotation(id, 30*time.Second)
		d.stop()
		if got.Phase != "done" {
			t.Fatalf("rotation ended %s: %s %s", got.Phase, got.Outcome, got.LastError)
		}
		w.checkEnd(c, newV)
		w.scanForSecrets()
	})
}

// A secret someone else wrote (no managed-by marker) is refused: the
// rotation fails and is rolled back with an outcome naming the secret, the
// foreign secret is left exactly as it was (no new version, no marker),
// every other sink is rolled back, and the key minted for it is revoked.
func TestStoresRefuseForeignSecret(t *testing.T) {
	t.Parallel()
	kit := newStoreKit(t)
	for _, tc := range []string{"vault", "secrets-mgr", "secrets-mgr-taken-over"} {
		t.Run(tc, func(t *testing.T) {
			t.Parallel()
			c := ctx(t)
			k := kit.forTest(t)
			n := storeName(t)
			foreign := "foreign-" + rotator.Fingerprint(n)[:24]
			addSecret(foreign)
			var (
				w    *storeWorld
				id   string
				oldV string
				path string // how the error names the refused secret
			)
			switch tc {
			case "vault":
				// Bootstrap into a Vault secret another team wrote.
				path = n
				if _, err := k.kv.Put(c, n, map[string]any{vaultFieldCurrent: foreign, "owner": "team-x"}); err != nil {
					t.Fatal(err)
				}
				w = kit.world(t, storeTarget{vault: n}, storesOpts{})
				w.startDaemon()
				id = w.bootstrapRotation()
			case "secrets-mgr":
				// Bootstrap into a secret another team created.
				path = n
				if _, err := k.sm.CreateSecret(c, &sm.CreateSecretInput{Name: aws.String(n), SecretString: aws.String(foreign)}); err != nil {
					t.Fatal(err)
				}
				w = kit.world(t, storeTarget{aws: n}, storesOpts{})
				w.startDaemon()
				id = w.bootstrapRotation()
			default:
				// A managed key whose Secrets Manager secret another team
				// deleted and created again as theirs: Vault, staged first,
				// is rolled back.
				path = n
				w = kit.world(t, storeTarget{vault: n, aws: n}, storesOpts{})
				w.startDaemon()
				w.bootstrap("api")
				oldV = k.mustCurrent(c, w.tg)
				if _, err := k.sm.DeleteSecret(c, &sm.DeleteSecretInput{SecretId: aws.String(n), ForceDeleteWithoutRecovery: aws.Bool(true)}); err != nil {
					t.Fatal(err)
				}
				if _, err := k.sm.CreateSecret(c, &sm.CreateSecretInput{Name: aws.String(n), SecretString: aws.String(foreign)}); err != nil {
					t.Fatal(err)
				}
				id = w.rotate()
			}
			// A hold for a human (e.g. a rollback the foreign secret also
			// refuses) would leave the minted key live: fail at once.
			r := w.waitPhase(id, "finished or held", 20*time.Second, func(r storeRotation) bool {
				return r.Hold != "" || slices.Contains([]string{"done", "failed", "cancelled"}, r.Phase)
			})
			if r.Phase != "failed" {
				t.Fatalf("rotation into a foreign secret ended %s (hold %q): %s %s", r.Phase, r.Hold, r.Outcome, r.LastError)
			}
			if !strings.Contains(r.Outcome, path) || !strings.Contains(r.Outcome, "not managed") {
				t.Fatalf("outcome %q does not name the refused secret %s", r.Outcome, path)
			}
			t.Logf("outcome: %s", r.Outcome)
			if tc == "vault" {
				sec, err := k.kv.Get(c, n)
				if err != nil {
					t.Fatal(err)
				}
				if len(sec.Data) != 2 || sec.Data[vaultFieldCurrent] != foreign || sec.Data["owner"] != "team-x" ||
					sec.VersionMetadata.Version != 1 || sec.CustomMetadata["managed-by"] != nil {
					t.Fatalf("the foreign Vault secret was touched: version %d, fields %v, custom metadata %v",
						sec.VersionMetadata.Version, slices.Sorted(maps.Keys(sec.Data)), sec.CustomMetadata)
				}
			} else {
				if v, err := k.awsCurrent(c, n); err != nil || v != foreign {
					t.Fatalf("the foreign secret's current value changed (err %v)", err)
				}
				vs, err := k.sm.ListSecretVersionIds(c, &sm.ListSecretVersionIdsInput{SecretId: aws.String(n), IncludeDeprecated: aws.Bool(true)})
				if err != nil {
					t.Fatal(err)
				}
				d, err := k.sm.DescribeSecret(c, &sm.DescribeSecretInput{SecretId: aws.String(n)})
				if err != nil {
					t.Fatal(err)
				}
				if len(vs.Versions) != 1 || len(d.Tags) != 0 {
					t.Fatalf("the foreign secret was touched: %d versions, tags %v", len(vs.Versions), d.Tags)
				}
			}
			// Preflight: the foreign target is found before the issuer is
			// asked, so nothing is minted for this rotation at all.
			minted := w.ledger()
			if oldV == "" && len(minted) != 0 {
				t.Fatalf("%d credentials minted for a target rekey does not own", len(minted))
			}
			if oldV != "" && len(minted) != 1 {
				t.Fatalf("%d credentials at the issuer, want only the bootstrap's", len(minted))
			}
			live := 0
			for _, c := range minted {
				if c.RevokedAt == "" {
					live++
					if oldV == "" || c.Fingerprint != rotator.Fingerprint(oldV) {
						t.Fatalf("%s, minted for the refused secret, is still live at the issuer", c.Name)
					}
				}
			}
			if oldV != "" {
				// Vault is back to the old key alone.
				if live != 1 {
					t.Fatalf("%d live credentials, want the old one", live)
				}
				data, err := k.vaultData(c, n)
				if err != nil {
					t.Fatal(err)
				}
				if len(data) != 1 || data[vaultFieldCurrent] != oldV {
					t.Fatalf("vault after the rollback holds fields %v, want the old key alone", slices.Sorted(maps.Keys(data)))
				}
			}
			if out, code := w.cli("", "audit", "verify"); code != 0 {
				t.Fatalf("audit verify: exit %d: %s", code, out)
			}
			w.scanForSecrets()
		})
	}
}

// bootstrapRotation waits for the rotation the daemon starts at once for a
// key without a credential, and returns its id.
func (w *storeWorld) bootstrapRotation() string {
	w.t.Helper()
	deadline := patient(15 * time.Second)
	for {
		var list struct {
			Rotations []rotationView `json:"rotations"`
		}
		w.api("GET", "/v1/rotations?key=api", nil, &list)
		for _, r := range list.Rotations {
			if r.Trigger == "bootstrap" {
				return r.ID
			}
		}
		if time.Now().After(deadline) {
			w.t.Fatal("the daemon started no bootstrap rotation")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
