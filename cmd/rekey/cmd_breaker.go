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
		Short:   "Let every contained emergency revoke, and start counting over (a responder's decision)",
		Example: "  rekey breaker release",
		Args:    args(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.connect("breaker release", true)
			if err != nil {
				return err
			}
			defer cl.Close()
			var out struct {
				Released []string `json:"released"`
			}
			raw, err := cl.post(cmd.Context(), "/v1/breaker/release", nil, &out)
			if err != nil || c.output == "json" {
				return rawOr(c, raw, err)
			}
			fmt.Fprintf(c.stdout, "breaker released: %d contained emergencies revoke now\n", len(out.Released))
			return nil
		},
	})
	return cmd
}
