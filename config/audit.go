package config

import (
	"fmt"
	"regexp"
	"time"
)

// Audit configures the audit trail's protection against whoever can write
// the database: an HMAC key for the chain, which the database never holds,
// and Ed25519-signed checkpoints of the chain head written outside the store.
// Without a key the chain is unkeyed SHA-256: it detects accidents, not an
// attacker with database access (`rekey validate` and the daemon's log say so).
type Audit struct {
	// KeyID names the current audit key; every event sealed with it records
	// it, so the key can be rotated: move the old one to Keys and set a new
	// KeyID and key.
	KeyID string `koanf:"key_id"`
	// KeyEnv / KeyFile: the current HMAC key (at least 32 bytes; e.g.
	// `openssl rand -base64 32`).
	KeyEnv  string `koanf:"key_env"`
	KeyFile string `koanf:"key_file"`
	// Keys are retired audit keys, kept to verify the events they sealed.
	Keys []AuditKey `koanf:"keys"`
	// CheckpointsDir receives one signed checkpoint file per interval (and
	// one at shutdown), never overwritten: keep it off the database host or
	// ship it somewhere append-only.
	CheckpointsDir     string        `koanf:"checkpoints_dir"`
	CheckpointInterval time.Duration `koanf:"checkpoint_interval"`
	// SigningKeyEnv / SigningKeyFile: the Ed25519 private key that signs
	// checkpoints (PEM "PRIVATE KEY", e.g. `openssl genpkey -algorithm
	// ed25519`, or a base64 32-byte seed). `rekey audit pubkey` prints the
	// public key a verifier needs.
	SigningKeyEnv  string `koanf:"signing_key_env"`
	SigningKeyFile string `koanf:"signing_key_file"`
}

// AuditKey is a retired audit key, by id.
type AuditKey struct {
	ID      string `koanf:"id"`
	KeyEnv  string `koanf:"key_env"`
	KeyFile string `koanf:"key_file"`
}

// Keyed reports whether new audit events are sealed with a key.
func (a Audit) Keyed() bool { return a.KeyEnv != "" || a.KeyFile != "" }

// DefaultCheckpointInterval is audit.checkpoint_interval's default.
const DefaultCheckpointInterval = 5 * time.Minute

// UnkeyedAuditWarning is what `rekey validate`, the daemon's log and `rekey
// audit verify` say when no audit key is configured.
const UnkeyedAuditWarning = "audit.key_env: not set: the audit chain is unkeyed — it detects accidents, not an attacker with database access (see docs/AUDIT.md)"

var auditKeyIDRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// Warnings lists what is valid but weakens rekey, for `rekey validate` and
// the daemon's log.
func (c *Config) Warnings() []string {
	var w []string
	if !c.Audit.Keyed() {
		w = append(w, UnkeyedAuditWarning)
	}
	return w
}

func (c *Config) validateAudit(errs *Errors) {
	a := c.Audit
	ids := map[string]string{}
	checkKey := func(path, idField, id, env, file string) {
		switch {
		case id == "":
			errs.Add(path+"."+idField, "required with a key (it is recorded with every event the key seals)")
		case !auditKeyIDRE.MatchString(id):
			errs.Add(path+"."+idField, "%q must be lowercase letters, digits, '.', '_' or '-' (at most 64)", id)
		default:
			if other, dup := ids[id]; dup {
				errs.Add(path+"."+idField, "duplicate audit key id %q (also %s)", id, other)
			}
			ids[id] = path
		}
		if env != "" && file != "" {
			errs.Add(path+".key_env", "set only one of key_env and key_file")
		}
	}
	if a.Keyed() {
		checkKey("audit", "key_id", a.KeyID, a.KeyEnv, a.KeyFile)
	} else if a.KeyID != "" {
		errs.Add("audit.key_env", "required with key_id (or key_file)")
	}
	for i, k := range a.Keys {
		p := fmt.Sprintf("audit.keys[%d]", i)
		if k.KeyEnv == "" && k.KeyFile == "" {
			errs.Add(p+".key_env", "required (or key_file)")
		}
		checkKey(p, "id", k.ID, k.KeyEnv, k.KeyFile)
	}
	if a.SigningKeyEnv != "" && a.SigningKeyFile != "" {
		errs.Add("audit.signing_key_env", "set only one of signing_key_env and signing_key_file")
	}
	signing := a.SigningKeyEnv != "" || a.SigningKeyFile != ""
	switch {
	case a.CheckpointsDir != "" && !signing:
		errs.Add("audit.signing_key_env", "required with checkpoints_dir (or signing_key_file): checkpoints are signed")
	case a.CheckpointsDir == "" && signing:
		errs.Add("audit.checkpoints_dir", "required with a signing key: where signed checkpoints are written")
	}
	if a.CheckpointInterval < 0 || a.CheckpointInterval > 0 && a.CheckpointInterval < time.Second {
		errs.Add("audit.checkpoint_interval", "must be at least 1s, got %s", a.CheckpointInterval)
	}
}
