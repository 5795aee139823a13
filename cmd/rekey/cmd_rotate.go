package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/rekeyhq/rekey/rotator"
)

func cmdRotate(c *cli) *cobra.Command {
	var emergency, bootstrap, wait, recommission bool
	var reason, trigger string
	cmd := &cobra.Command{
		Use:   "rotate KEY",
		Short: "Start a rotation of a key",
		Long: `Start a rotation of a key: staged (mint, deliver beside the old key, cut over,
drain, revoke) unless --emergency (revoke first). The actor recorded is the
authenticated principal (or break-glass:<os user>@<host>).

With --wait it follows the rotation until it ends or waits for a person: a
live line with a countdown on a terminal, timestamped lines otherwise; it
exits 6 when the rotation ends failed, denied, cancelled or expired.

Arguments:
  KEY   a key name, as rekey status lists them`,
		Example: `  rekey rotate payments-api --reason "quarterly" --wait
  rekey rotate payments-api --bootstrap
  rekey rotate payments-api --emergency --reason "leaked in a build log"`,
		Args:              args(1, "KEY"),
		ValidArgsFunction: c.completeKeys,
		RunE: func(cmd *cobra.Command, a []string) error {
			body := map[string]any{"reason": reason, "bootstrap": bootstrap, "trigger": trigger}
			if emergency {
				body["mode"] = "emergency"
			}
			if recommission {
				body["recommission"] = true
			}
			cl, err := c.connect("rotate", true)
			if err != nil {
				return err
			}
			defer cl.Close()
			var r rotationOut
			raw, err := cl.post(cmd.Context(), "/v1/keys/"+esc(a[0])+"/rotate", body, &r)
			if err != nil {
				var ae *apiError
				if errors.As(err, &ae) && ae.status == 409 { // the key's active rotation comes back with the refusal
					var active struct {
						Rotation *rotationOut `json:"rotation"`
					}
					if json.Unmarshal(raw, &active) == nil && active.Rotation != nil && c.output != "json" {
						fmt.Fprintln(c.stdout, active.Rotation.summary(time.Now()))
					}
				}
				return err
			}
			if !wait {
				return c.printRotation(raw, r)
			}
			raw, r, err = c.waitSettled(cmd.Context(), cl, r)
			if err != nil {
				return err
			}
			if err := c.printRotation(raw, r); err != nil {
				return err
			}
			return settledOutcome(r)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&emergency, "emergency", false, "revoke first, then mint and deliver (exposure)")
	f.BoolVar(&bootstrap, "bootstrap", false, "mint the first generation of a key without one")
	f.StringVar(&reason, "reason", "", "why (recorded and notified)")
	f.StringVar(&trigger, "trigger", "", "manual (default), exposure, departure, unauthorized or decommission")
	f.BoolVar(&wait, "wait", false, "follow the rotation until it finishes or waits for a person")
	f.BoolVar(&recommission, "recommission", false, "allow minting a key that was decommissioned (undoes the decommission)")
	return cmd
}

// settledOutcome turns the end of a waited-for rotation into the exit code
// scripts test: done, or still active (waiting on a person), is success;
// any other terminal phase is errUnsuccessful.
func settledOutcome(r rotationOut) error {
	if !r.Phase.Terminal() || r.Phase == rotator.PhaseDone {
		return nil
	}
	return fmt.Errorf("rotation %s ended %s: %w", r.ID, r.Phase, errUnsuccessful)
}
