package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"os/user"
	"text/tabwriter"
	"time"

	"github.com/rekeyhq/rekey/app"
	"github.com/rekeyhq/rekey/auth"
)

// token manages per-person API tokens by opening the store directly: the
// break-glass path (the first token, or when the admin API is out of
// reach). Through the admin API, POST /v1/tokens does the same.
func (c *cli) token(args []string) error {
	if len(args) == 0 {
		return usageError{"rekey token: expected create, list or revoke"}
	}
	switch args[0] {
	case "create":
		return c.tokenCreate(args[1:])
	case "list":
		return c.tokenList(args[1:])
	case "revoke":
		return c.tokenRevoke(args[1:])
	}
	return usageError{fmt.Sprintf("rekey token: unknown subcommand %q (create, list or revoke)", args[0])}
}

// breakGlassActor names who used the break-glass path: the OS user.
func breakGlassActor() string {
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	return "break-glass:" + name
}

func (c *cli) tokenStore(o *common) (*app.Daemon, auth.TokenStore, error) {
	d, err := c.open(o)
	if err != nil {
		return nil, nil, err
	}
	s := app.TokenStore(d.Store)
	if s == nil {
		d.Close()
		return nil, nil, errors.New("this store keeps no API tokens")
	}
	return d, s, nil
}

func (c *cli) tokenCreate(args []string) error {
	fs, o := c.flags("token create", false)
	usr := fs.String("user", "", "the person the token acts as (their email)")
	role := fs.String("role", "", "viewer, operator, approver, responder or admin")
	keys := fs.String("keys", "", "limit the role to keys matching this pattern (e.g. payments-*)")
	team := fs.String("team", "", "limit the role to keys of this owner team")
	expires := fs.String("expires", "720h", `lifetime (e.g. 720h, 30d; "never" for none)`)
	if _, err := parse(fs, o, args, 0, "no arguments"); err != nil {
		return err
	}
	exp := *expires
	if exp == "never" {
		exp = ""
	}
	spec, err := app.TokenSpecFor(nil, *usr, *role, *keys, *team, exp, breakGlassActor())
	if err != nil {
		return usageError{"rekey token create: " + err.Error()}
	}
	d, s, err := c.tokenStore(o)
	if err != nil {
		return err
	}
	defer d.Close()
	spec.User = d.Directory.Canonical(spec.User)
	tok, rec, err := auth.CreateToken(c.ctx, s, spec, time.Now())
	if err != nil {
		return err
	}
	if err := d.AuditTokenCreated(c.ctx, rec, spec.CreatedBy); err != nil {
		return fmt.Errorf("token %s created but not recorded in the audit trail (revoke it and retry): %w", rec.ID, err)
	}
	if o.output == "json" {
		return json.NewEncoder(c.stdout).Encode(map[string]any{"token": tok, "details": app.ViewToken(rec)})
	}
	fmt.Fprintln(c.stdout, tok)
	fmt.Fprintf(c.stderr, "token %s for %s (%s) created; it is shown once, only its hash is kept\n", rec.ID, rec.User, rec.Grant.Role)
	return nil
}

func (c *cli) tokenList(args []string) error {
	fs, o := c.flags("token list", false)
	if _, err := parse(fs, o, args, 0, "no arguments"); err != nil {
		return err
	}
	d, s, err := c.tokenStore(o)
	if err != nil {
		return err
	}
	defer d.Close()
	list, err := s.ListTokens(c.ctx)
	if err != nil {
		return err
	}
	views := make([]app.TokenView, 0, len(list))
	for _, t := range list {
		views = append(views, app.ViewToken(t))
	}
	if o.output == "json" {
		return json.NewEncoder(c.stdout).Encode(map[string]any{"tokens": views})
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tUSER\tROLE\tKEYS\tTEAM\tEXPIRES\tREVOKED")
	for _, v := range views {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.ID, v.User, v.Role, v.Keys, v.Team, v.ExpiresAt, v.RevokedAt)
	}
	return tw.Flush()
}

func (c *cli) tokenRevoke(args []string) error {
	fs, o := c.flags("token revoke", false)
	pos, err := parse(fs, o, args, 1, "TOKEN_ID")
	if err != nil {
		return err
	}
	d, s, err := c.tokenStore(o)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := s.RevokeToken(c.ctx, pos[0], time.Now()); err != nil {
		return err
	}
	if err := d.AuditTokenRevoked(c.ctx, pos[0], breakGlassActor()); err != nil {
		return fmt.Errorf("token %s revoked but not recorded in the audit trail: %w", pos[0], err)
	}
	fmt.Fprintf(c.stderr, "token %s revoked (by %s)\n", pos[0], breakGlassActor())
	return nil
}
