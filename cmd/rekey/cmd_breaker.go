package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/rekeyhq/rekey/app"
)

func cmdBreaker(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "breaker",
		Short:   "The emergency breaker: open or closed, the emergencies it contains",
		Example: "  rekey breaker\n  rekey breaker release",
		Args:    args(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.connect("breaker", false)
			if err != nil {
				return err
			}
			defer cl.Close()
			var bs app.BreakerView
			raw, err := cl.get(cmd.Context(), "/v1/breaker", &bs)
			if err != nil || c.output == "json" {
				return rawOr(c, raw, err)
			}
			state := "closed"
			if bs.Open {
				state = "OPEN"
			}
			fmt.Fprintf(c.stdout, "emergency breaker %s: %d automatic emergencies since %s (limit %d per %s); %d contained\n",
				state, bs.Recent, bs.Since.UTC().Format(time.RFC3339), bs.Max, human(bs.Window), len(bs.Contained))
			for _, id := range bs.Contained {
				fmt.Fprintf(c.stdout, "  %s waits for a responder\n", id)
			}
			return nil
		},
	}
	cmd.AddCommand(&cobra.Command{
		Use:     "release",
		Short:   "Let every contained emergency in your scope revoke, and start counting over (a responder's decision)",
		Example: "  rekey breaker release",
		Args:    args(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.connect("breaker release", true)
			if err != nil {
				return err
			}
			defer cl.Close()
			var out struct {
				Released  []string          `json:"released"`
				Results   []app.ReleaseView `json:"results"`
				Restarted bool              `json:"counting_restarted"`
			}
			raw, err := cl.post(cmd.Context(), "/v1/breaker/release", nil, &out)
			if err != nil {
				return err
			}
			if c.output == "json" {
				if err := printRaw(c.stdout, raw); err != nil {
					return err
				}
			} else {
				printRelease(c, out.Results, len(out.Released), out.Restarted)
			}
			if len(out.Released) < len(out.Results) {
				return fmt.Errorf("%d of %d contained emergencies were not released: %w", len(out.Results)-len(out.Released), len(out.Results), errRefused)
			}
			return nil
		},
	})
	return cmd
}

// printRelease reports a breaker release per key: each contained rotation
// released, or why not.
func printRelease(c *cli, results []app.ReleaseView, released int, restarted bool) {
	for _, r := range results {
		if r.Released {
			fmt.Fprintf(c.stdout, "  %s (%s): released, revokes now\n", r.Key, r.Rotation)
		} else {
			fmt.Fprintf(c.stdout, "  %s (%s): NOT released: %s\n", r.Key, r.Rotation, r.Error)
		}
	}
	if restarted {
		fmt.Fprintf(c.stdout, "breaker released: %d contained emergencies revoke now; counting starts over\n", released)
		return
	}
	fmt.Fprintf(c.stdout, "%d contained emergencies of the keys in your scope revoke now; the breaker keeps counting (only a responder for every key restarts it)\n", released)
}
