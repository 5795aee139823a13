package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/rekeyhq/rekey/app"
	"github.com/rekeyhq/rekey/webhooks/scanners"
)

// report submits a leak scanner's findings (for CI pipelines): every token
// is fingerprinted on reading and matched against live credentials; a match
// starts an emergency rotation, which the daemon drives.
func (c *cli) report(args []string) error {
	fs, o := c.flags("report", false)
	format := fs.String("format", "", "scanner output format: "+fmt.Sprint(scanners.Formats))
	pos, err := parse(fs, o, args, 1, "FILE (or - for stdin)")
	if err != nil {
		return err
	}
	if *format == "" {
		return usageError{"--format is required"}
	}
	in := c.stdin
	if pos[0] != "-" {
		f, err := os.Open(pos[0])
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	reports, err := scanners.Parse(*format, in)
	if err != nil {
		return usageError{err.Error()}
	}
	d, err := c.open(o)
	if err != nil {
		return err
	}
	defer d.Close()
	type line struct {
		Source     string `json:"source"`
		URL        string `json:"url"`
		Known      bool   `json:"known"`
		Key        string `json:"key,omitempty"`
		Generation int    `json:"generation,omitempty"`
		RotationID string `json:"rotation_id,omitempty"`
		Duplicate  bool   `json:"duplicate,omitempty"`
	}
	var out []line
	known := 0
	for _, r := range reports {
		r.Via = "cli"
		res, err := d.Engine.ReportExposure(c.ctx, r)
		if err != nil {
			return fmt.Errorf("report %s: %w", r.URL, err)
		}
		if res.Known {
			known++
		}
		out = append(out, line{r.Source, r.URL, res.Known, res.Key, res.Generation, res.RotationID, res.Duplicate})
	}
	if o.output == "json" {
		if err := printJSON(c.stdout, map[string]any{"findings": len(reports), "known": known, "results": out}); err != nil {
			return err
		}
		return liveMatches(known)
	}
	t := newTable("SOURCE", "WHERE", "MATCH", "ROTATION")
	for _, l := range out {
		m := "no live credential"
		if l.Known {
			m = fmt.Sprintf("%s generation %d", l.Key, l.Generation)
		}
		if l.Duplicate {
			m += " (already reported)"
		}
		t.row(l.Source, l.URL, m, l.RotationID)
	}
	if err := t.write(c.stdout); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "%d finding(s), %d matched a live credential\n", len(reports), known)
	return liveMatches(known)
}

// liveMatches fails the command (exit 7) when any finding matched a live
// credential, so a CI step that runs `rekey report` fails the build.
func liveMatches(known int) error {
	if known == 0 {
		return nil
	}
	return fmt.Errorf("%d finding(s) matched a live credential (emergency rotations started): %w", known, errLiveMatch)
}

// decommission revokes every live credential of a key and removes it from
// its sinks, without a replacement.
func (c *cli) decommission(args []string) error {
	fs, o := c.flags("decommission", true)
	reason := fs.String("reason", "", "why (recorded and notified)")
	yes := fs.Bool("yes", false, "do not ask for confirmation (required when stdin is not a terminal)")
	pos, err := parse(fs, o, args, 1, "KEY")
	if err != nil {
		return err
	}
	if !*yes {
		if err := c.confirmDestructive(fmt.Sprintf("Decommission %s: revoke EVERY live credential of it now and delete it from every sink. Consumers lose access at once. Type the key name to go on: ", pos[0]), pos[0]); err != nil {
			return err
		}
	}
	req, err := app.TriggerFor(pos[0], "emergency", "decommission", *reason, o.as, false)
	if err != nil {
		return usageError{err.Error()}
	}
	d, err := c.open(o)
	if err != nil {
		return err
	}
	defer d.Close()
	r, err := d.Engine.Trigger(c.ctx, req)
	if err != nil {
		return err
	}
	return c.printRotation(o, r)
}

// confirmDestructive asks a person at a terminal to type want; without a
// terminal it refuses (the caller must pass --yes).
func (c *cli) confirmDestructive(prompt, want string) error {
	f, ok := c.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return usageError{"refusing a destructive action without confirmation: not a terminal; pass --yes"}
	}
	fmt.Fprint(c.stderr, prompt)
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != want {
		return fmt.Errorf("not confirmed; nothing was done: %w", errRefused)
	}
	return nil
}
