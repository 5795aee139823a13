package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rekeyhq/rekey/app"
)

// cmdToken manages per-person API tokens, through the admin API (the admin
// role) or in break-glass mode, which is how the first admin token is made.
func cmdToken(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Per-person API tokens: create, list, revoke",
		Example: `  rekey token create --break-glass -c rekey.yaml --user alice@example.com --role admin   # the first one
  rekey token list
  rekey token revoke tok_01JD2…`,
		Args: args(0, ""),
		RunE: unknownSubcommand,
	}
	var user, role, keys, team, expires string
	create := &cobra.Command{
		Use:     "create",
		Short:   "Create a token for a person; it is printed once, only its hash is kept",
		Example: "  rekey token create --user bob@example.com --role approver --keys 'payments-*' --expires 30d",
		Args:    args(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if user == "" || role == "" {
				return usageError{"rekey token create: --user and --role are required"}
			}
			exp := expires
			if exp == "never" {
				exp = ""
			}
			cl, err := c.connect("token create", true)
			if err != nil {
				return err
			}
			defer cl.Close()
			var out struct {
				Token   string        `json:"token"`
				Details app.TokenView `json:"details"`
			}
			raw, err := cl.post(cmd.Context(), "/v1/tokens", map[string]string{"user": user, "role": role, "keys": keys, "team": team, "expires": exp}, &out)
			if err != nil || c.output == "json" {
				return rawOr(c, raw, err)
			}
			fmt.Fprintln(c.stdout, out.Token)
			fmt.Fprintf(c.stderr, "token %s for %s (%s) created; it is shown once, only its hash is kept\n", out.Details.ID, out.Details.User, out.Details.Role)
			return nil
		},
	}
	f := create.Flags()
	f.StringVar(&user, "user", "", "the person the token acts as (their email)")
	f.StringVar(&role, "role", "", "viewer, operator, approver, responder or admin")
	f.StringVar(&keys, "keys", "", "limit the role to keys matching this pattern (e.g. payments-*)")
	f.StringVar(&team, "team", "", "limit the role to keys of this owner team")
	f.StringVar(&expires, "expires", "720h", `lifetime (e.g. 720h, 30d; "never" for none)`)
	list := &cobra.Command{
		Use:     "list",
		Short:   "List tokens (never their values or hashes)",
		Example: "  rekey token list",
		Args:    args(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.connect("token list", false)
			if err != nil {
				return err
			}
			defer cl.Close()
			var out struct {
				Tokens []app.TokenView `json:"tokens"`
			}
			raw, err := cl.get(cmd.Context(), "/v1/tokens", &out)
			if err != nil || c.output == "json" {
				return rawOr(c, raw, err)
			}
			t := newTable("ID", "USER", "ROLE", "KEYS", "TEAM", "CREATED BY", "EXPIRES", "REVOKED")
			for _, v := range out.Tokens {
				t.row(v.ID, v.User, v.Role, v.Keys, v.Team, createdBy(v), v.ExpiresAt, v.RevokedAt)
			}
			return t.write(c.stdout)
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke TOKEN_ID",
		Short: "Revoke a token at once",
		Long: `Revoke a token at once.

Arguments:
  TOKEN_ID   a token id (tok_…), as rekey token list shows them`,
		Example: "  rekey token revoke tok_01JD2…",
		Args:    args(1, "TOKEN_ID"),
		RunE: func(cmd *cobra.Command, a []string) error {
			cl, err := c.connect("token revoke", true)
			if err != nil {
				return err
			}
			defer cl.Close()
			raw, err := cl.post(cmd.Context(), "/v1/tokens/"+esc(a[0])+"/revoke", nil, nil)
			if err != nil || c.output == "json" {
				return rawOr(c, raw, err)
			}
			fmt.Fprintf(c.stderr, "token %s revoked\n", a[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

// createdBy is the people behind a token, its creator first: "bob ←
// alice" is a token bob created with a token alice created for him (the
// engine counts a token's decisions as all of theirs).
func createdBy(v app.TokenView) string {
	if len(v.Chain) > 0 {
		return strings.Join(v.Chain, " ← ")
	}
	return v.CreatedBy
}
