package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rekeyhq/rekey/app"
	"github.com/rekeyhq/rekey/config"
)

func cmdRun(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:     "run",
		Short:   "Run the daemon: scheduler, engine, public and admin listeners",
		Example: "  rekey run -c /etc/rekey/rekey.yaml",
		Args:    args(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := c.loadConfig(); err != nil {
				return err
			}
			return app.Run(cmd.Context(), app.Options{ConfigPath: c.config, Logs: c.stderr, Version: version, Revision: commit})
		},
	}
}

func cmdValidate(c *cli) *cobra.Command {
	var online bool
	cmd := &cobra.Command{
		Use:     "validate",
		Short:   "Check the configuration; lists every problem with its YAML path",
		Example: "  rekey validate -c rekey.yaml\n  rekey validate -o json",
		Args:    args(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if online {
				return c.printDoctor(app.Doctor(cmd.Context(), c.config, app.NewLogger(c.stderr, "error")))
			}
			cfg, err := config.Load(c.config)
			var errs config.Errors
			if err != nil {
				if !errors.As(err, &errs) || cfg == nil {
					return configError{err}
				}
			}
			errs = mergeErrors(errs, app.Validate(cfg))
			if len(errs) > 0 {
				if c.output == "json" {
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
				return configError{fmt.Errorf("%s: %d problem(s)", c.config, len(errs))}
			}
			gates, gateWarnings := app.GateNotes(cfg)
			warnings := append(app.Warnings(cfg), gateWarnings...)
			if c.output == "json" {
				return printJSON(c.stdout, map[string]any{"valid": true, "keys": len(cfg.Keys), "warnings": warnings, "gates": app.GateProofs(cfg)})
			}
			fmt.Fprintf(c.stdout, "%s: valid (%d keys, %d issuers, %d sinks, %d notifiers)\n", c.config, len(cfg.Keys), len(cfg.Issuers), len(cfg.Sinks), len(cfg.Notifiers))
			for _, g := range gates {
				fmt.Fprintln(c.stdout, g)
			}
			for _, w := range warnings {
				fmt.Fprintln(c.stdout, "WARNING: "+w)
			}
			// Unresolved secrets are not a configuration error here
			// (validate runs in CI, without them), but say so: rekey
			// doctor checks them where the daemon runs.
			for _, e := range app.MissingSecrets(cfg) {
				fmt.Fprintf(c.stdout, "WARNING: %s: %s here (rekey doctor checks every reference where the daemon runs)\n", e.Path, e.Msg)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&online, "online", false, "also resolve every secret reference and call every dependency (rekey doctor)")
	return cmd
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
