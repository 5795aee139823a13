package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rekeyhq/rekey/app"
)

// cli holds the streams and the global flags every verb shares.
type cli struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	// tty, if set, says whether stderr is a terminal (tests); otherwise
	// the file descriptor is asked.
	tty func() bool

	config     string // -c: the configuration file (daemon, validate, break-glass)
	output     string // -o: table or json
	breakGlass bool   // --break-glass: open the store directly
	tokenFile  string // --token-file: the API credential
	cacert     string // --cacert: the admin listener's private CA
	as         string // --as: removed; set, it is a usage error that says why

	// clientTLS is --client-cert and --client-key (mTLS).
	clientTLS clientCert
}

// verbs lists every command, one constructor per file (cmd_<verb>.go).
// Adding a verb is a file with `func cmdX(c *cli) *cobra.Command` and one
// line here.
var verbs = []func(*cli) *cobra.Command{
	cmdRun, cmdValidate, cmdDoctor,
	cmdWhoami, cmdPlan, cmdStatus, cmdRotations, cmdShow, cmdDescribe, cmdAudit,
	cmdRotate, cmdApprove, cmdDeny, cmdCancel, cmdRetry, cmdSubmit, cmdConfirm, cmdDecommission, cmdReport, cmdBreaker, cmdDeparture,
	cmdCluster, cmdToken, cmdLogin, cmdLogout, cmdVersion,
}

const rootLong = `rekey rotates API keys without downtime.

Every verb but run and validate talks to the daemon's admin API when
REKEY_ADDR is set (http://host:port, https://host:port or unix:///path),
with a credential from REKEY_TOKEN, --token-file or REKEY_TOKEN_FILE, or
the OIDC login ` + "`rekey login`" + ` cached for that address: no configuration
file, no store access, no production secret.

Without REKEY_ADDR, read-only verbs read the store named by the
configuration (-c) and never create it. Verbs that change anything then need
--break-glass (or REKEY_BREAK_GLASS=1): the emergency path that opens the
store directly, recorded in the audit trail as break-glass:<os user>@<host>.

Exit codes: 0 ok, 1 error, 2 usage or configuration, 3 refused,
4 not found, 5 audit tampered, 6 rotate --wait unsuccessful,
7 report matched a live credential.`

func (c *cli) root() *cobra.Command {
	root := &cobra.Command{
		Use:   "rekey",
		Short: "Rotate API keys without downtime",
		Long:  rootLong,
		Example: `  export REKEY_ADDR=https://rekey.internal:8081 REKEY_TOKEN=rk_…
  rekey status
  rekey rotate payments-api --reason "quarterly" --wait
  rekey approve rot_01J… --comment "checked"`,
		SilenceErrors:     true,
		SilenceUsage:      true,
		Args:              cobra.ArbitraryArgs,
		RunE:              unknownSubcommand,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	root.SetIn(c.stdin)
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageError{fmt.Sprintf("%s: %v (see %s --help)", cmd.CommandPath(), err, cmd.CommandPath())}
	})
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		if c.output != "table" && c.output != "json" {
			return usageError{"-o must be table or json"}
		}
		if c.as != "" {
			return usageError{"--as is gone: the actor is the person your credential names (REKEY_TOKEN), or in break-glass mode " +
				"the operating system account (" + app.BreakGlassPrincipal().ID + "); see rekey whoami"}
		}
		return nil
	}
	def := c.getenv("REKEY_CONFIG")
	if def == "" {
		def = "rekey.yaml"
	}
	f := root.PersistentFlags()
	f.StringVarP(&c.config, "config", "c", def, "configuration file (run, validate, and without REKEY_ADDR) [$REKEY_CONFIG]")
	f.StringVarP(&c.output, "output", "o", "table", "output format: table or json")
	f.BoolVar(&c.breakGlass, "break-glass", false, "open the store directly instead of the admin API; recorded in the audit trail [$REKEY_BREAK_GLASS=1]")
	f.StringVar(&c.tokenFile, "token-file", "", "file holding the admin API credential [$REKEY_TOKEN_FILE, or $REKEY_TOKEN]")
	f.StringVar(&c.cacert, "cacert", "", "PEM file of the CA that signed the admin listener's certificate [$REKEY_CACERT]")
	c.clientCertFlags(f)
	f.StringVar(&c.as, "as", "", "removed: the actor is the authenticated principal")
	_ = f.MarkHidden("as")
	for _, v := range verbs {
		root.AddCommand(v(c))
	}
	return root
}

// unknownSubcommand runs when no verb matched: the bare command prints its
// help (exit 2), an unknown word is a usage error with suggestions.
func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		_ = cmd.Help()
		return usageError{"a command is required"}
	}
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
	}
	return usageError{msg + "\n\nRun '" + cmd.CommandPath() + " --help' for usage."}
}

// args checks the number of positional arguments; names describes them
// for the error (e.g. "KEY").
func args(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if len(a) != n {
			if n == 0 && cmd.HasSubCommands() {
				return unknownSubcommand(cmd, a)
			}
			if n == 0 {
				return usageError{fmt.Sprintf("%s takes no arguments (got %q)", cmd.CommandPath(), a)}
			}
			return usageError{fmt.Sprintf("%s: expected %s", cmd.CommandPath(), names)}
		}
		return nil
	}
}
