package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func cmdWhoami(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Who the daemon takes you for: principal, how you authenticated, roles",
		Example: `  REKEY_ADDR=http://127.0.0.1:8081 REKEY_TOKEN=rk_… rekey whoami
  rekey whoami --break-glass -c /etc/rekey/rekey.yaml   # break-glass:<os user>@<host>`,
		Args: args(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.connect("whoami", false)
			if err != nil {
				return err
			}
			defer cl.Close()
			var who struct {
				ID      string   `json:"id"`
				Via     string   `json:"via"`
				Roles   []string `json:"roles"`
				TokenID string   `json:"token_id"`
				Cert    string   `json:"cert_serial"`
			}
			raw, err := cl.get(cmd.Context(), "/v1/whoami", &who)
			if err != nil {
				return err
			}
			if c.output == "json" {
				return printRaw(c.stdout, raw)
			}
			fmt.Fprintf(c.stdout, "%s (via %s)\nroles: %s\n", who.ID, who.Via, strings.Join(who.Roles, ", "))
			if who.TokenID != "" {
				fmt.Fprintf(c.stdout, "token: %s\n", who.TokenID)
			}
			if who.Cert != "" {
				fmt.Fprintf(c.stdout, "client certificate: serial %s\n", who.Cert)
			}
			return nil
		},
	}
}
