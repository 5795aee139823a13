package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/rekeyhq/rekey/app"
	"github.com/rekeyhq/rekey/rotator"
)

func (c *cli) rotate(args []string) error {
	fs, o := c.flags("rotate", true)
	emergency := fs.Bool("emergency", false, "revoke first, then mint and deliver (exposure)")
	bootstrap := fs.Bool("bootstrap", false, "mint the first generation of a key without one")
	reason := fs.String("reason", "", "why (recorded and notified)")
	trigger := fs.String("trigger", "", "manual (default), exposure, departure, unauthorized or decommission")
	wait := fs.Bool("wait", false, "drive the rotation here until it finishes or waits for a human")
	recommission := fs.Bool("recommission", false, "allow minting a key that was decommissioned (undoes the decommission)")
	pos, err := parse(fs, o, args, 1, "KEY")
	if err != nil {
		return err
	}
	mode := ""
	if *emergency {
		mode = "emergency"
	}
	req, err := app.TriggerFor(pos[0], mode, *trigger, *reason, o.as, *bootstrap)
	if err != nil {
		return usageError{err.Error()}
	}
	req.Recommission = *recommission
	d, err := c.open(o)
	if err != nil {
		return err
	}
	defer d.Close()
	r, err := d.Engine.Trigger(c.ctx, req)
	if err != nil {
		if r != nil && errors.Is(err, rotator.ErrActiveRotation) {
			_ = c.printRotation(o, r)
		}
		return err
	}
	if *wait {
		if r, err = c.driveUntilSettled(d, r.ID); err != nil {
			return err
		}
	}
	if err := c.printRotation(o, r); err != nil {
		return err
	}
	if *wait {
		return settledOutcome(r)
	}
	return nil
}

// settledOutcome turns the end of a waited-for rotation into the exit code
// scripts test: done, or still active (waiting on a human or a timer), is
// success; any other terminal phase is errUnsuccessful.
func settledOutcome(r *rotator.Rotation) error {
	if r.Active() || r.Phase == rotator.PhaseDone {
		return nil
	}
	return fmt.Errorf("rotation %s ended %s: %w", r.ID, r.Phase, errUnsuccessful)
}

// driveUntilSettled runs the engine in this process until the rotation ends
// or waits on a human or a long timer.
func (c *cli) driveUntilSettled(d *app.Daemon, id string) (*rotator.Rotation, error) {
	for {
		d.Engine.RunOnce(c.ctx)
		r, err := d.Store.GetRotation(c.ctx, id)
		if err != nil {
			return nil, err
		}
		if !r.Active() || r.Hold != rotator.HoldNone {
			return r, nil
		}
		wait := time.Until(r.NextAttemptAt)
		if wait > 0 {
			fmt.Fprintf(c.stderr, "rekey: %s in %s, next step in %s\n", r.ID, r.Phase, wait.Round(time.Second))
			select {
			case <-time.After(wait):
			case <-c.ctx.Done():
				return r, c.ctx.Err()
			}
		}
	}
}

func (c *cli) decide(v rotator.Verdict) func([]string) error {
	return func(args []string) error {
		fs, o := c.flags(string(v), true)
		comment := fs.String("comment", "", "why (recorded)")
		pos, err := parse(fs, o, args, 1, "ROTATION")
		if err != nil {
			return err
		}
		if o.as == "" {
			return usageError{"--as is required"}
		}
		d, err := c.open(o)
		if err != nil {
			return err
		}
		defer d.Close()
		r, err := d.Engine.Decide(c.ctx, rotator.ApproveRequest{RotationID: pos[0], Approver: o.as, Verdict: v, Via: "cli", Comment: *comment})
		if err != nil {
			return err
		}
		return c.printRotation(o, r)
	}
}

func (c *cli) simple(name string, args []string, f func(d *app.Daemon, id, actor, extra string) (*rotator.Rotation, error), extraFlag string) error {
	fs, o := c.flags(name, true)
	var extra *string
	if extraFlag != "" {
		extra = fs.String(extraFlag, "", extraFlag)
	}
	pos, err := parse(fs, o, args, 1, "ROTATION")
	if err != nil {
		return err
	}
	if o.as == "" {
		return usageError{"--as is required"}
	}
	d, err := c.open(o)
	if err != nil {
		return err
	}
	defer d.Close()
	x := ""
	if extra != nil {
		x = *extra
	}
	r, err := f(d, pos[0], o.as, x)
	if err != nil {
		return err
	}
	return c.printRotation(o, r)
}

func (c *cli) cancel(args []string) error {
	return c.simple("cancel", args, func(d *app.Daemon, id, actor, reason string) (*rotator.Rotation, error) {
		return d.Engine.Cancel(c.ctx, id, actor, reason)
	}, "reason")
}

func (c *cli) retry(args []string) error {
	return c.simple("retry", args, func(d *app.Daemon, id, actor, _ string) (*rotator.Rotation, error) {
		return d.Engine.Retry(c.ctx, id, actor)
	}, "")
}

func (c *cli) confirm(args []string) error {
	return c.simple("confirm", args, func(d *app.Daemon, id, actor, _ string) (*rotator.Rotation, error) {
		return d.Engine.Confirm(c.ctx, id, actor)
	}, "")
}

// submit reads the secret from a terminal without echo, or from stdin.
func (c *cli) submit(args []string) error {
	return c.simple("submit", args, func(d *app.Daemon, id, actor, _ string) (*rotator.Rotation, error) {
		sec, err := c.readSecret()
		if err != nil {
			return nil, err
		}
		return d.Engine.Submit(c.ctx, id, actor, sec)
	}, "")
}

func (c *cli) readSecret() (rotator.Secret, error) {
	if f, ok := c.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(c.stderr, "secret (input hidden): ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.stderr)
		if err != nil {
			return rotator.Secret{}, fmt.Errorf("read secret: %w", err)
		}
		return rotator.NewSecret(strings.TrimSpace(string(b))), nil
	}
	line, err := bufio.NewReader(io.LimitReader(c.stdin, 64<<10)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return rotator.Secret{}, fmt.Errorf("read secret from stdin: %w", err)
	}
	s := strings.TrimSpace(line)
	if s == "" {
		return rotator.Secret{}, usageError{"no secret on stdin"}
	}
	return rotator.NewSecret(s), nil
}

func (c *cli) printRotation(o *common, r *rotator.Rotation) error {
	v := app.ViewRotation(r)
	if o.output == "json" {
		return printJSON(c.stdout, v)
	}
	line := fmt.Sprintf("%s %s %s/%s phase=%s", v.ID, v.Key, v.Mode, v.Trigger, phaseLabel(r))
	if w := r.Waiting; w != nil && r.Active() {
		line += " waiting=" + waitingCell(w, time.Now()) + " (" + w.Detail + ")"
	} else if v.Hold != "" {
		line += " waiting=" + string(v.Hold) + " (" + v.HoldDetail + ")"
	}
	if v.Request != nil {
		line += " pending=" + string(v.Request.Kind) + " (by " + v.Request.By + ", applied at the daemon's next step)"
	}
	if v.Outcome != "" {
		line += " outcome=" + v.Outcome
	}
	fmt.Fprintln(c.stdout, line)
	return nil
}
