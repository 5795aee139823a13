package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rekeyhq/rekey/app"
	"github.com/rekeyhq/rekey/config"
	"github.com/rekeyhq/rekey/rotator"
)

func (c *cli) runDaemon(args []string) error {
	fs, o := c.flags("run", false)
	if _, err := parse(fs, o, args, 0, "no arguments"); err != nil {
		return err
	}
	return app.Run(c.ctx, app.Options{ConfigPath: o.config, Logs: c.stderr, Version: versionString()})
}

func (c *cli) validate(args []string) error {
	fs, o := c.flags("validate", false)
	if _, err := parse(fs, o, args, 0, "no arguments"); err != nil {
		return err
	}
	cfg, err := config.Load(o.config)
	var errs config.Errors
	if err != nil {
		if !errors.As(err, &errs) || cfg == nil {
			return err
		}
	}
	errs = mergeErrors(errs, app.Validate(cfg))
	if len(errs) > 0 {
		if o.output == "json" {
			out := []map[string]string{}
			for _, e := range errs {
				out = append(out, map[string]string{"path": e.Path, "error": e.Msg})
			}
			_ = printJSON(c.stdout, map[string]any{"valid": false, "errors": out})
		} else {
			for _, e := range errs {
				fmt.Fprintln(c.stdout, e.Error())
			}
		}
		return usageError{fmt.Sprintf("%s: %d problem(s)", o.config, len(errs))}
	}
	if o.output == "json" {
		return printJSON(c.stdout, map[string]any{"valid": true, "keys": len(cfg.Keys), "warnings": append([]string{}, cfg.Warnings()...)})
	}
	fmt.Fprintf(c.stdout, "%s: valid (%d keys, %d issuers, %d sinks, %d notifiers)\n", o.config, len(cfg.Keys), len(cfg.Issuers), len(cfg.Sinks), len(cfg.Notifiers))
	for _, w := range cfg.Warnings() {
		fmt.Fprintln(c.stdout, "WARNING: "+w)
	}
	return nil
}

func (c *cli) plan(args []string) error {
	fs, o := c.flags("plan", false)
	if _, err := parse(fs, o, args, 0, "no arguments"); err != nil {
		return err
	}
	d, err := c.open(o)
	if err != nil {
		return err
	}
	defer d.Close()
	items, err := d.Engine.Plan(c.ctx, time.Now())
	if err != nil {
		return err
	}
	if o.output == "json" {
		return printJSON(c.stdout, map[string]any{"plan": items})
	}
	t := newTable("KEY", "ACTION", "AGE", "DUE", "WHY")
	for _, it := range items {
		why := it.Detail
		if it.Policy != "" {
			why = it.Policy + "/" + it.Reason + ": " + it.Detail
		}
		if len(it.Warnings) > 0 {
			why += " [warning: " + strings.Join(it.Warnings, "; ") + "]"
		}
		t.row(it.Key, it.Action, it.Age, dateOnly(it.Due), why)
	}
	return t.write(c.stdout)
}

func (c *cli) status(args []string) error {
	fs, o := c.flags("status", false)
	if _, err := parse(fs, o, args, 0, "no arguments"); err != nil {
		return err
	}
	d, err := c.open(o)
	if err != nil {
		return err
	}
	defer d.Close()
	keys, err := d.KeyViews(c.ctx, time.Now())
	if err != nil {
		return err
	}
	active, err := d.Store.ListRotations(c.ctx, rotator.RotationFilter{ActiveOnly: true})
	if err != nil {
		return err
	}
	if o.output == "json" {
		rv := []app.RotationView{}
		for _, r := range active {
			rv = append(rv, app.ViewRotation(r))
		}
		return printJSON(c.stdout, map[string]any{"keys": keys, "active_rotations": rv})
	}
	t := newTable("KEY", "GEN", "AGE", "NEXT DUE", "STATE", "SINKS")
	for _, k := range keys {
		t.row(k.Name, fmt.Sprint(k.Generation), k.Age, dateOnly(parseTime(k.NextDue)), k.State, strings.Join(k.Sinks, ","))
	}
	if err := t.write(c.stdout); err != nil {
		return err
	}
	if bs, err := d.Engine.Breaker(c.ctx); err == nil && bs.Open {
		fmt.Fprintf(c.stdout, "\nEMERGENCY BREAKER OPEN: %d automatic emergencies since %s (limit %d per %s); %d contained, waiting for a responder: rekey breaker release\n",
			bs.Recent, bs.Since.UTC().Format(time.RFC3339), bs.Max, bs.Window, len(bs.Contained))
	}
	if len(active) > 0 {
		fmt.Fprintln(c.stdout)
		return rotationTable(active).write(c.stdout)
	}
	return nil
}

func (c *cli) rotations(args []string) error {
	fs, o := c.flags("rotations", false)
	all := fs.Bool("all", false, "include finished rotations")
	key := fs.String("key", "", "only this key")
	if _, err := parse(fs, o, args, 0, "no arguments"); err != nil {
		return err
	}
	d, err := c.open(o)
	if err != nil {
		return err
	}
	defer d.Close()
	rots, err := d.Store.ListRotations(c.ctx, rotator.RotationFilter{Key: *key, ActiveOnly: !*all, Limit: 1000})
	if err != nil {
		return err
	}
	if o.output == "json" {
		rv := []app.RotationView{}
		for _, r := range rots {
			rv = append(rv, app.ViewRotation(r))
		}
		return printJSON(c.stdout, map[string]any{"rotations": rv})
	}
	return rotationTable(rots).write(c.stdout)
}

func (c *cli) show(args []string) error {
	fs, o := c.flags("show", false)
	pos, err := parse(fs, o, args, 1, "ROTATION")
	if err != nil {
		return err
	}
	d, err := c.open(o)
	if err != nil {
		return err
	}
	defer d.Close()
	r, err := d.Store.GetRotation(c.ctx, pos[0])
	if err != nil {
		return fmt.Errorf("rotation %s: %w", pos[0], err)
	}
	approvals, err := d.Store.Approvals(c.ctx, r.ID)
	if err != nil {
		return err
	}
	v := app.ViewRotation(r)
	if o.output == "json" {
		return printJSON(c.stdout, map[string]any{"rotation": v, "approvals": approvals})
	}
	fmt.Fprintf(c.stdout, "rotation %s of %s\n  trigger:  %s by %s (%s)\n  mode:     %s\n  phase:    %s\n", v.ID, v.Key, v.Trigger, v.Actor, v.Reason, v.Mode, v.Phase)
	if v.Hold != "" {
		fmt.Fprintf(c.stdout, "  waiting:  %s — %s\n", v.Hold, v.HoldDetail)
	}
	if v.Request != nil {
		fmt.Fprintf(c.stdout, "  pending:  %s by %s at %s (applied at the daemon's next step)\n", v.Request.Kind, v.Request.By, v.Request.At.UTC().Format(time.RFC3339))
	}
	if v.LastError != "" {
		fmt.Fprintf(c.stdout, "  error:    %s (%s, attempt %d, next %s)\n", v.LastError, v.ErrorReason, v.Attempts, v.NextAttemptAt)
	}
	fmt.Fprintf(c.stdout, "  generations: %d → %d\n", v.OldGeneration, v.NewGeneration)
	if v.Outcome != "" {
		fmt.Fprintf(c.stdout, "  outcome:  %s\n", v.Outcome)
	}
	for _, a := range approvals {
		fmt.Fprintf(c.stdout, "  %s %s: %s via %s at %s\n", a.Gate, a.Verdict, a.Approver, a.Via, a.At.UTC().Format(time.RFC3339))
	}
	return nil
}

// mergeErrors appends b's problems to a's, skipping paths a already names
// (a field that failed to decode would be reported again as invalid).
func mergeErrors(a, b config.Errors) config.Errors {
	seen := map[string]bool{}
	for _, e := range a {
		seen[e.Path] = true
	}
	for _, e := range b {
		if !seen[e.Path] {
			a = append(a, e)
		}
	}
	return a
}
