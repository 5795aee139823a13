package main

import (
	"fmt"
	"strings"

	"github.com/rekeyhq/rekey/app"
)

// doctor checks the configuration and every dependency it names with
// read-only calls, and prints a table of ✔/✘ with the fix for each.
// Exit: 0 all pass, 1 a dependency fails, 2 the configuration is wrong.
func (c *cli) doctor(args []string) error {
	fs, o := c.flags("doctor", false)
	if _, err := parse(fs, o, args, 0, "no arguments"); err != nil {
		return err
	}
	return c.printDoctor(o, app.Doctor(c.ctx, o.config, app.NewLogger(c.stderr, "error")))
}

// printDoctor prints a doctor report and turns it into the exit code.
func (c *cli) printDoctor(o *common, rep app.Report) error {
	if o.output == "json" {
		if err := printJSON(c.stdout, rep); err != nil {
			return err
		}
	} else {
		t := newTable("STATUS", "CHECK", "RESULT", "FIX")
		for _, r := range rep.Results {
			mark := "✔"
			switch {
			case !r.OK:
				mark = "✘"
			case r.Skipped:
				mark = "–"
			}
			t.row(mark, r.Name, oneLine(r.Detail), oneLine(r.Fix))
		}
		if err := t.write(c.stdout); err != nil {
			return err
		}
	}
	failed := 0
	for _, r := range rep.Results {
		if !r.OK {
			failed++
		}
	}
	switch rep.ExitCode() {
	case app.DoctorConfig:
		return usageError{fmt.Sprintf("%s: %d problem(s) in the configuration", rep.Config, failed)}
	case app.DoctorDependency:
		return fmt.Errorf("%s: %d check(s) failed", rep.Config, failed)
	}
	return nil
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
