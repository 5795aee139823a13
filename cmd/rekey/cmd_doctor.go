package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rekeyhq/rekey/app"
)

func cmdDoctor(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Check every secret reference and dependency with read-only calls; ✔/✘ with the fix",
		Long: `doctor resolves every *_env and *_file reference of the configuration at once
and makes one read-only call to each dependency: the store, each issuer, each
sink target (auth, read, ownership marker), Slack (auth.test, channels) and
each key's traffic queries rendered with the key's real values. It prints a
✔/✘ table with the fix for each failure. It runs where the daemon runs (it
needs the daemon's configuration and secrets); it does not create a store
that does not exist yet.

Exit: 0 every check passed, 1 a dependency failed, 2 the configuration is
wrong (an unset secret reference among them).`,
		Example: "  rekey doctor -c /etc/rekey/rekey.yaml\n  rekey validate --online -c rekey.yaml   # the same\n  rekey doctor -o json",
		Args:    args(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.printDoctor(app.Doctor(cmd.Context(), c.config, app.NewLogger(c.stderr, "error")))
		},
	}
}

// printDoctor prints a doctor report and turns it into the exit code.
func (c *cli) printDoctor(rep app.Report) error {
	if c.output == "json" {
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
		return configError{fmt.Errorf("%s: %d problem(s) in the configuration", rep.Config, failed)}
	case app.DoctorDependency:
		return fmt.Errorf("%s: %d check(s) failed", rep.Config, failed)
	}
	return nil
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
