package app

import (
	"context"
	"crypto/ed25519"
	"fmt"

	"github.com/rekeyhq/rekey/config"
	"github.com/rekeyhq/rekey/internal/auditlog"
	"github.com/rekeyhq/rekey/internal/secretref"
	"github.com/rekeyhq/rekey/rotator"
)

// minAuditKeyLen is the shortest audit key accepted, in bytes: an HMAC key
// shorter than the hash gives less than its strength.
const minAuditKeyLen = 32

// AuditKeys resolves the configured audit keys: the current one (which seals
// new events) and the retired ones (which verify the events they sealed).
// Without a current key the chain is unkeyed.
func AuditKeys(a config.Audit) (rotator.AuditKeys, error) {
	var k rotator.AuditKeys
	add := func(path, id string, ref secretref.Ref) error {
		s, err := ref.Resolve()
		if err != nil {
			return config.Errors{{Path: path, Msg: err.Error()}}
		}
		if len(s.Reveal()) < minAuditKeyLen {
			return config.Errors{{Path: path, Msg: fmt.Sprintf("audit key %q is shorter than %d bytes (e.g. `openssl rand -base64 32`)", id, minAuditKeyLen)}}
		}
		if k.Keys == nil {
			k.Keys = map[string]rotator.Secret{}
		}
		k.Keys[id] = s
		return nil
	}
	if a.Keyed() {
		if err := add("audit.key_env", a.KeyID, secretref.Ref{Env: a.KeyEnv, File: a.KeyFile}); err != nil {
			return k, err
		}
		k.Current = a.KeyID
	}
	for i, r := range a.Keys {
		if err := add(fmt.Sprintf("audit.keys[%d].key_env", i), r.ID, secretref.Ref{Env: r.KeyEnv, File: r.KeyFile}); err != nil {
			return k, err
		}
	}
	if err := k.Validate(); err != nil { // config.Validate has checked the ids
		return k, config.Errors{{Path: "audit", Msg: err.Error()}}
	}
	return k, nil
}

// AuditSigningKey resolves the Ed25519 key that signs audit checkpoints; nil
// when none is configured.
func AuditSigningKey(a config.Audit) (ed25519.PrivateKey, error) {
	ref := secretref.Ref{Env: a.SigningKeyEnv, File: a.SigningKeyFile}
	if ref.IsZero() {
		return nil, nil
	}
	s, err := ref.Resolve()
	if err != nil {
		return nil, config.Errors{{Path: "audit.signing_key_env", Msg: err.Error()}}
	}
	k, err := auditlog.ParsePrivateKey([]byte(s.Reveal()))
	if err != nil {
		return nil, config.Errors{{Path: "audit.signing_key_env", Msg: err.Error()}}
	}
	return k, nil
}

// buildAudit gives the store its audit keys and, with audit.checkpoints_dir
// and checkpoints set, builds the checkpoint writer (started by startAudit).
func (d *Daemon) buildAudit(cfg config.Audit, checkpoints bool) error {
	keys, err := AuditKeys(cfg)
	if err != nil {
		return err
	}
	d.Store.SetAuditKeys(keys)
	if cfg.CheckpointsDir == "" || !checkpoints {
		return nil
	}
	sk, err := AuditSigningKey(cfg)
	if err != nil {
		return err
	}
	d.checkpoints, err = auditlog.NewWriter(cfg.CheckpointsDir, sk, d.Store.AuditHead, cfg.CheckpointInterval,
		d.Logger.With("component", "audit"))
	if err != nil {
		return config.Errors{{Path: "audit.checkpoints_dir", Msg: err.Error()}}
	}
	return nil
}

// startAudit says loudly when the audit chain is unkeyed, and runs the
// checkpoint writer until the returned stop, which writes a last checkpoint.
func (d *Daemon) startAudit(ctx context.Context) (stop func()) {
	for _, w := range d.Config.Warnings() {
		d.Logger.Warn(w)
	}
	if d.checkpoints == nil {
		d.Logger.Warn("audit.checkpoints_dir: not set: no signed checkpoints are written; a rewrite of the database's audit trail can go unnoticed (see docs/AUDIT.md)")
		return func() {}
	}
	d.checkpoints.Start(ctx)
	return d.checkpoints.Stop
}

// VerifyAuditCheckpoints checks the store's audit trail against the signed
// checkpoints in dir (see auditlog.Check): signatures under pub first, then
// the trail against each checkpoint.
func (d *Daemon) VerifyAuditCheckpoints(ctx context.Context, dir string, pub ed25519.PublicKey) ([]rotator.AuditProblem, error) {
	cps, problems, err := auditlog.ReadDir(dir, pub)
	if err != nil {
		return nil, err
	}
	if len(cps) == 0 && len(problems) == 0 {
		return nil, fmt.Errorf("audit checkpoints: no checkpoint in %s", dir)
	}
	evs, err := d.Store.Audit(ctx, rotator.AuditFilter{})
	if err != nil {
		return nil, err
	}
	return append(problems, auditlog.Check(evs, cps)...), nil
}
