package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/rekeyhq/rekey/app"
	"github.com/rekeyhq/rekey/config"
	"github.com/rekeyhq/rekey/internal/auditlog"
	"github.com/rekeyhq/rekey/rotator"
)

const auditUsage = "usage: rekey audit [verify [--checkpoints DIR] [--pubkey FILE] | export [--since SEQ] [--out FILE] | pubkey] [--key K] [--rotation R]"

func (c *cli) audit(args []string) error {
	fs, o := c.flags("audit", false)
	key := fs.String("key", "", "only events of this key")
	rot := fs.String("rotation", "", "only events of this rotation")
	limit := fs.Int("limit", 0, "at most this many events")
	checkpoints := fs.String("checkpoints", "", "verify: also check the trail against the signed checkpoints in this directory")
	pubkey := fs.String("pubkey", "", "verify: the checkpoints' Ed25519 public key (PEM); default: derived from audit.signing_key_*")
	since := fs.Int64("since", 0, "export: only events after this sequence number")
	out := fs.String("out", "", "export: append to this file (resuming after its last event) instead of stdout")
	pos, err := parse(fs, o, args, -1, "")
	if err != nil {
		return err
	}
	verb := ""
	if len(pos) == 1 {
		verb = pos[0]
	}
	if len(pos) > 1 || !slices.Contains([]string{"", "verify", "export", "pubkey"}, verb) {
		return usageError{auditUsage}
	}
	if verb == "pubkey" {
		return c.auditPubkey(o)
	}
	d, err := c.open(o)
	if err != nil {
		return err
	}
	defer d.Close()
	switch verb {
	case "verify":
		return c.auditVerify(d, o, *checkpoints, *pubkey)
	case "export":
		return c.auditExport(d, *since, *out)
	}
	evs, err := d.Store.Audit(c.ctx, rotator.AuditFilter{Key: *key, RotationID: *rot, Limit: *limit})
	if err != nil {
		return err
	}
	if o.output == "json" {
		views := []app.AuditView{}
		for _, e := range evs {
			views = append(views, app.ViewAudit(e))
		}
		return printJSON(c.stdout, map[string]any{"events": views})
	}
	t := newTable("SEQ", "TIME", "KEY", "ROTATION", "ACTOR", "ACTION", "PHASE", "DETAIL")
	for _, e := range evs {
		t.row(fmt.Sprint(e.Seq), e.At.UTC().Format(time.RFC3339), e.Key, e.RotationID, e.Actor, e.Action, string(e.Phase), rotator.MarshalDetail(e.Detail))
	}
	return t.write(c.stdout)
}

// auditVerify checks the chain (keyed events with the configured audit
// keys) and, with --checkpoints, the trail against the signed checkpoints:
// exit 5 names the first bad event.
func (c *cli) auditVerify(d *app.Daemon, o *common, dir, pubFile string) error {
	problems, err := d.Store.VerifyAudit(c.ctx)
	if err != nil {
		return err
	}
	checked := ""
	if dir != "" {
		pub, err := c.checkpointKey(d.Config.Audit, pubFile)
		if err != nil {
			return err
		}
		more, err := d.VerifyAuditCheckpoints(c.ctx, dir, pub)
		if err != nil {
			return err
		}
		problems = append(problems, more...)
		checked = "; matches the signed checkpoints in " + dir
	}
	// The chain's own problems come first: they name the exact event; a
	// checkpoint's names the first event of the range it covers.
	mode := "unkeyed: detects accidents, not an attacker with database access"
	if d.Config.Audit.Keyed() {
		mode = fmt.Sprintf("keyed: new events sealed with audit key %q", d.Config.Audit.KeyID)
	}
	if o.output == "json" {
		if problems == nil {
			problems = []rotator.AuditProblem{}
		}
		_ = printJSON(c.stdout, map[string]any{"ok": len(problems) == 0, "problems": problems, "keyed": d.Config.Audit.Keyed(), "checkpoints": dir != ""})
	} else if len(problems) == 0 {
		fmt.Fprintf(c.stdout, "audit trail intact (%s%s)\n", mode, checked)
	} else {
		for _, p := range problems {
			fmt.Fprintf(c.stdout, "event %d: %s\n", p.Seq, p.Problem)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %d problem(s), first at event %d", errAuditTampered, len(problems), problems[0].Seq)
	}
	if seq, hash, err := d.Store.AuditHead(c.ctx); err == nil && seq > 0 && d.Config.Audit.Keyed() && rotator.AuditHashKeyID(hash) == "" {
		fmt.Fprintf(c.stderr, "rekey: WARNING: the last event (%d) is unkeyed although audit key %q is configured: expected only if "+
			"nothing was recorded since the key was configured; otherwise the chain was recomputed without the key (verify with --checkpoints)\n",
			seq, d.Config.Audit.KeyID)
	}
	if dir == "" {
		fmt.Fprintln(c.stderr, "rekey: note: without --checkpoints, a chain rewritten by someone holding the audit key (or any unkeyed chain) verifies")
	}
	return nil
}

// checkpointKey is the public key from --pubkey, or else derived from the
// configured signing key.
func (c *cli) checkpointKey(a config.Audit, file string) (ed25519.PublicKey, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		pub, err := auditlog.ParsePublicKey(b)
		if err != nil {
			return nil, fmt.Errorf("--pubkey %s: %w", file, err)
		}
		return pub, nil
	}
	sk, err := app.AuditSigningKey(a)
	if err != nil {
		return nil, err
	}
	if sk == nil {
		return nil, usageError{"--checkpoints needs --pubkey FILE (or audit.signing_key_env / signing_key_file in the configuration)"}
	}
	return sk.Public().(ed25519.PublicKey), nil
}

// auditPubkey prints the public key that verifies the daemon's checkpoints.
func (c *cli) auditPubkey(o *common) error {
	cfg, err := config.Load(o.config)
	if err != nil {
		return err
	}
	sk, err := app.AuditSigningKey(cfg.Audit)
	if err != nil {
		return err
	}
	if sk == nil {
		return usageError{"audit.signing_key_env / signing_key_file: not set: no checkpoints are signed"}
	}
	_, err = c.stdout.Write(auditlog.MarshalPublicKey(sk.Public().(ed25519.PublicKey)))
	return err
}

// auditExport writes the trail as JSON Lines: to stdout, or appended to a
// file, resuming after the last event the file holds.
func (c *cli) auditExport(d *app.Daemon, since int64, out string) error {
	w := c.stdout
	if out != "" {
		last, err := auditlog.LastExported(out)
		if err != nil {
			return err
		}
		since = max(since, last)
		f, err := os.OpenFile(out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return err
		}
		defer f.Close() //nolint:errcheck // closed and checked below; this one is for early returns
		w = f
	}
	page := func(ctx context.Context, after int64, limit int) ([]rotator.AuditEvent, error) {
		return d.Store.Audit(ctx, rotator.AuditFilter{AfterSeq: after, Limit: limit})
	}
	last, err := auditlog.Export(c.ctx, w, page, since)
	if err != nil {
		return err
	}
	if f, ok := w.(*os.File); ok && out != "" {
		if err := f.Sync(); err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		if last == since {
			fmt.Fprintf(c.stderr, "rekey: no event after %d to export to %s\n", since, out)
		} else {
			fmt.Fprintf(c.stderr, "rekey: exported events %d..%d to %s\n", since+1, last, out)
		}
	}
	return nil
}
