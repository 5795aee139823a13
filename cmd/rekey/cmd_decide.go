package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/rekeyhq/rekey/rotator"
)

const rotationArg = `

Arguments:
  ROTATION   a rotation id (rot_…), as rekey rotations lists them`

// command is a verb that POSTs to /v1/rotations/{id}/<action> and prints
// the rotation: body builds the request body from the flags.
func (c *cli) command(use, action, short, long, example string, flags func(*cobra.Command), body func() (any, error)) *cobra.Command {
	cmd := &cobra.Command{
		Use:               use + " ROTATION",
		Short:             short,
		Long:              short + "." + long + rotationArg,
		Example:           example,
		Args:              args(1, "ROTATION"),
		ValidArgsFunction: c.completeRotations,
		RunE: func(cmd *cobra.Command, a []string) error {
			cl, err := c.connect(use, true)
			if err != nil {
				return err
			}
			defer cl.Close()
			b, err := body()
			if err != nil {
				return err
			}
			var r rotationOut
			raw, err := cl.post(cmd.Context(), "/v1/rotations/"+esc(a[0])+"/"+action, b, &r)
			if err != nil {
				return err
			}
			return c.printRotation(raw, r)
		},
	}
	if flags != nil {
		flags(cmd)
	}
	return cmd
}

func cmdApprove(c *cli) *cobra.Command { return c.decide(rotator.VerdictApprove) }
func cmdDeny(c *cli) *cobra.Command    { return c.decide(rotator.VerdictDeny) }

func (c *cli) decide(v rotator.Verdict) *cobra.Command {
	var comment string
	return c.command(string(v), string(v), fmt.Sprintf("%s the gate a rotation waits on", strings.ToUpper(string(v[:1]))+string(v[1:])),
		" The approver is the authenticated principal; the requester cannot decide their own rotation.",
		fmt.Sprintf("  rekey %s rot_01JD2… --comment \"checked the change ticket\"", v),
		func(cmd *cobra.Command) { cmd.Flags().StringVar(&comment, "comment", "", "why (recorded)") },
		func() (any, error) { return map[string]string{"comment": comment}, nil })
}

func cmdCancel(c *cli) *cobra.Command {
	var reason string
	return c.command("cancel", "cancel", "Roll back a rotation whose old key is still live", "",
		"  rekey cancel rot_01JD2… --reason \"a consumer still fails\"",
		func(cmd *cobra.Command) { cmd.Flags().StringVar(&reason, "reason", "", "why (recorded and notified)") },
		func() (any, error) { return map[string]string{"reason": reason}, nil })
}

func cmdRetry(c *cli) *cobra.Command {
	return c.command("retry", "retry", "Retry a held rotation now", "", "  rekey retry rot_01JD2…", nil,
		func() (any, error) { return nil, nil })
}

func cmdConfirm(c *cli) *cobra.Command {
	var force bool
	return c.command("confirm", "confirm", "Confirm a key was revoked by hand",
		" With --force, confirm although the daemon's probe says the key still works.",
		"  rekey confirm rot_01JD2…",
		func(cmd *cobra.Command) {
			cmd.Flags().BoolVar(&force, "force", false, "confirm although the probe says the old key still works")
		},
		func() (any, error) {
			if force {
				return map[string]bool{"force": true}, nil
			}
			return nil, nil
		})
}

func cmdSubmit(c *cli) *cobra.Command {
	return c.command("submit", "submit", "Hand over a manually minted secret",
		" The secret is read from the terminal without echo, or from the first line of stdin; it is sent to the daemon and never printed.",
		"  rekey submit rot_01JD2…                       # prompts, no echo\n  vault read -field=key secret/x | rekey submit rot_01JD2…", nil,
		func() (any, error) {
			sec, err := c.readSecret()
			if err != nil {
				return nil, err
			}
			return map[string]string{"secret": sec.Reveal()}, nil // on the wire only
		})
}

func (c *cli) readSecret() (rotator.Secret, error) {
	if f, ok := c.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(c.stderr, "secret (input hidden): ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.stderr)
		if err != nil {
			return rotator.Secret{}, fmt.Errorf("read secret: %w", err)
		}
		return rotator.NewSecret(strings.TrimSpace(string(b))), nil
	}
	line, err := bufio.NewReader(io.LimitReader(c.stdin, 64<<10)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return rotator.Secret{}, fmt.Errorf("read secret from stdin: %w", err)
	}
	s := strings.TrimSpace(line)
	if s == "" {
		return rotator.Secret{}, usageError{"no secret on stdin"}
	}
	return rotator.NewSecret(s), nil
}
