package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func cmdDeparture(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "departure",
		Short: "Departures reported by HR: undo one sent by mistake",
		Args:  args(0, ""),
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "undo PERSON",
		Short: "Forget that PERSON left (a departure sent by mistake; admin, audited as departure.undone)",
		Long: `Forget that PERSON left, under every name auth.identities knows them by:
they decide, request and authenticate again. Nothing the departure took is
given back: their revoked API tokens stay revoked (create new ones), and
keys it rotated stay rotated. Audited as departure.undone by you.`,
		Example: "  rekey departure undo carol@example.com",
		Args:    args(1, "PERSON (an email or user id)"),
		RunE: func(cmd *cobra.Command, a []string) error {
			cl, err := c.connect("departure undo", true)
			if err != nil {
				return err
			}
			defer cl.Close()
			var out struct {
				Undone []string `json:"undone"`
				Note   string   `json:"note"`
			}
			raw, err := cl.post(cmd.Context(), "/v1/departures/"+esc(a[0])+"/undo", nil, &out)
			if err != nil || c.output == "json" {
				return rawOr(c, raw, err)
			}
			fmt.Fprintf(c.stdout, "departure of %s undone; %s\n", strings.Join(out.Undone, "/"), out.Note)
			return nil
		},
	})
	return cmd
}
