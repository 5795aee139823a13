package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/rekeyhq/rekey/app"
	"github.com/rekeyhq/rekey/config"
	"github.com/rekeyhq/rekey/internal/auditlog"
	"github.com/rekeyhq/rekey/rotator"
)

func cmdAudit(c *cli) *cobra.Command {
	var key, rot string
	var limit int
	cmd := &cobra.Command{
		Use:     "audit",
		Short:   "The audit trail: who did what, when, and through which channel",
		Example: "  rekey audit --key payments-api\n  rekey audit verify\n  rekey audit export --out /var/log/rekey-audit.jsonl",
		Args:    args(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.connect("audit", false)
			if err != nil {
				return err
			}
			defer cl.Close()
			q := url.Values{}
			for k, v := range map[string]string{"key": key, "rotation": rot} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if limit > 0 {
				q.Set("limit", strconv.Itoa(limit))
			}
			var out struct {
				Events []app.AuditView `json:"events"`
			}
			raw, err := cl.get(cmd.Context(), "/v1/audit?"+q.Encode(), &out)
			if err != nil || c.output == "json" {
				return rawOr(c, raw, err)
			}
			t := newTable("SEQ", "TIME", "KEY", "ROTATION", "ACTOR", "ACTION", "PHASE", "DETAIL")
			for _, e := range out.Events {
				t.row(fmt.Sprint(e.Seq), e.At, e.Key, e.RotationID, e.Actor, e.Action, string(e.Phase), rotator.MarshalDetail(e.Detail))
			}
			return t.write(c.stdout)
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "only events of this key")
	cmd.Flags().StringVar(&rot, "rotation", "", "only events of this rotation")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many events")
	cmd.AddCommand(c.auditVerify(), c.auditExport(), c.auditPubkey())
	return cmd
}

// auditVerify checks the chain (keyed events with the configured audit
// keys) and, with --checkpoints, the trail against the signed checkpoints:
// exit 5 names the first bad event. Through the API the daemon checks the
// chain; checkpoints are files on the daemon's host, so --checkpoints
// reads the store with the configuration.
func (c *cli) auditVerify() *cobra.Command {
	var dir, pubFile string
	cmd := &cobra.Command{
		Use:     "verify",
		Short:   "Check the audit chain; --checkpoints DIR also checks it against the signed checkpoints",
		Example: "  rekey audit verify\n  rekey audit verify -c rekey.yaml --checkpoints /var/lib/rekey/checkpoints --pubkey audit.pub",
		Args:    args(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir != "" {
				c.breakGlass = true // the checkpoints and the store are read here
			}
			cl, err := c.connect("audit verify", false)
			if err != nil {
				return err
			}
			defer cl.Close()
			if cl.local == nil {
				return c.verifyRemote(cmd.Context(), cl)
			}
			return c.verifyLocal(cmd.Context(), cl.local, dir, pubFile)
		},
	}
	cmd.Flags().StringVar(&dir, "checkpoints", "", "also check the trail against the signed checkpoints in this directory (reads the store: -c)")
	cmd.Flags().StringVar(&pubFile, "pubkey", "", "the checkpoints' Ed25519 public key (PEM); default: derived from audit.signing_key_*")
	return cmd
}

func (c *cli) verifyRemote(ctx context.Context, cl *client) error {
	var out struct {
		OK       bool                   `json:"ok"`
		Problems []rotator.AuditProblem `json:"problems"`
	}
	raw, err := cl.get(ctx, "/v1/audit/verify", &out)
	if ae, ok := err.(*apiError); ok && ae.status == 409 {
		_ = jsonInto(raw, &out)
		err = nil
	}
	if err != nil {
		return err
	}
	return c.reportProblems(out.Problems, raw, "checked by the daemon", "")
}

func (c *cli) verifyLocal(ctx context.Context, d *app.Daemon, dir, pubFile string) error {
	problems, err := d.Store.VerifyAudit(ctx)
	if err != nil {
		return err
	}
	checked := ""
	if dir != "" {
		pub, err := c.checkpointKey(d.Config.Audit, pubFile)
		if err != nil {
			return err
		}
		more, err := d.VerifyAuditCheckpoints(ctx, dir, pub)
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
	var raw []byte
	if c.output == "json" {
		if problems == nil {
			problems = []rotator.AuditProblem{}
		}
		raw, _ = jsonBytes(map[string]any{"ok": len(problems) == 0, "problems": problems, "keyed": d.Config.Audit.Keyed(), "checkpoints": dir != ""})
	}
	if err := c.reportProblems(problems, raw, mode, checked); err != nil {
		return err
	}
	if seq, hash, err := d.Store.AuditHead(ctx); err == nil && seq > 0 && d.Config.Audit.Keyed() && rotator.AuditHashKeyID(hash) == "" {
		fmt.Fprintf(c.stderr, "rekey: WARNING: the last event (%d) is unkeyed although audit key %q is configured: expected only if "+
			"nothing was recorded since the key was configured; otherwise the chain was recomputed without the key (verify with --checkpoints)\n",
			seq, d.Config.Audit.KeyID)
	}
	if dir == "" {
		fmt.Fprintln(c.stderr, "rekey: note: without --checkpoints, a chain rewritten by someone holding the audit key (or any unkeyed chain) verifies")
	}
	return nil
}

// reportProblems prints the verification's result; problems exit 5.
func (c *cli) reportProblems(problems []rotator.AuditProblem, raw []byte, mode, checked string) error {
	switch {
	case c.output == "json":
		if err := printRaw(c.stdout, raw); err != nil {
			return err
		}
	case len(problems) == 0:
		fmt.Fprintf(c.stdout, "audit trail intact (%s%s)\n", mode, checked)
	default:
		for _, p := range problems {
			fmt.Fprintf(c.stdout, "event %d: %s\n", p.Seq, p.Problem)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %d problem(s), first at event %d", errAuditTampered, len(problems), problems[0].Seq)
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

// auditPubkey prints the public key that verifies the daemon's checkpoints
// (from the configuration's signing key: a command for the daemon's host).
func (c *cli) auditPubkey() *cobra.Command {
	return &cobra.Command{
		Use:     "pubkey",
		Short:   "The public key that verifies audit checkpoints (from the configuration's signing key)",
		Example: "  rekey audit pubkey -c /etc/rekey/rekey.yaml > audit.pub",
		Args:    args(0, ""),
		RunE: func(*cobra.Command, []string) error {
			cfg, err := c.loadConfig()
			if err != nil {
				return err
			}
			sk, err := app.AuditSigningKey(cfg.Audit)
			if err != nil {
				return err
			}
			if sk == nil {
				return configError{fmt.Errorf("audit.signing_key_env / signing_key_file: not set: no checkpoints are signed")}
			}
			_, err = c.stdout.Write(auditlog.MarshalPublicKey(sk.Public().(ed25519.PublicKey)))
			return err
		},
	}
}

// auditExport writes the trail as JSON Lines: to stdout, or appended to a
// file, resuming after the last event the file holds. It reads the store
// (-c): the export is the daemon host's job.
func (c *cli) auditExport() *cobra.Command {
	var since int64
	var out string
	cmd := &cobra.Command{
		Use:     "export",
		Short:   "The audit trail as JSON Lines (--out FILE appends and resumes); reads the store (-c)",
		Example: "  rekey audit export -c /etc/rekey/rekey.yaml --out /var/log/rekey-audit.jsonl",
		Args:    args(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c.breakGlass = true
			cl, err := c.connect("audit export", false)
			if err != nil {
				return err
			}
			defer cl.Close()
			return c.export(cmd.Context(), cl.local, since, out)
		},
	}
	cmd.Flags().Int64Var(&since, "since", 0, "only events after this sequence number")
	cmd.Flags().StringVar(&out, "out", "", "append to this file (resuming after its last event) instead of stdout")
	return cmd
}

func (c *cli) export(ctx context.Context, d *app.Daemon, since int64, out string) error {
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
	last, err := auditlog.Export(ctx, w, page, since)
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
			fmt.Fprintf(c.stderr, "rekey: exported events %d..%d to %s (%s)\n", since+1, last, out, time.Now().UTC().Format(time.RFC3339))
		}
	}
	return nil
}
