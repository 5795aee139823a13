// Command rekey rotates API keys without downtime. `rekey run` is the
// daemon; the other commands inspect and steer it through the same store.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/rekeyhq/rekey/config"
	"github.com/rekeyhq/rekey/rotator"
)

// Exit codes scripts can rely on.
const (
	exitOK       = 0
	exitError    = 1 // operational failure (store, network…)
	exitUsage    = 2 // bad flags, bad configuration
	exitRefused  = 3 // refused: active rotation, wrong state, not allowed
	exitNotFound = 4 // unknown key or rotation
	exitAudit    = 5 // audit verification found tampering
	exitOutcome  = 6 // rotate --wait: the rotation ended failed, denied, cancelled (rolled back) or expired
	exitExposed  = 7 // report: a finding matched a live credential
)

const usage = `rekey — rotate API keys without downtime

Usage: rekey <command> [flags] [args]

Daemon:
  run                      run the daemon (scheduler, engine, HTTP listener)
Inspect:
  validate                 check the configuration; lists every problem with its YAML path
  plan                     what would happen to each key now, and why (no side effects)
  status                   keys, their state and active rotations
  rotations [--all]        list rotations
  show ROTATION            one rotation with its approvals
  audit [verify]           the audit trail; "verify" checks its chain (--checkpoints DIR: against signed checkpoints)
  audit export             the audit trail as JSON Lines (--since SEQ, --out FILE appends and resumes)
  audit pubkey             the public key that verifies audit checkpoints
Act:
  rotate KEY               start a rotation (--emergency, --bootstrap, --reason, --wait)
  approve|deny ROTATION    decide the gate a rotation waits on
  cancel ROTATION          roll back a rotation whose old key is still live
  retry ROTATION           retry a held rotation now
  submit ROTATION          hand over a manually minted secret (stdin or TTY, no echo)
  confirm ROTATION         confirm a key was revoked by hand
  decommission KEY         revoke every live credential and remove the key from its sinks (asks; --yes)
  report --format F FILE   submit a leak scanner's findings (trufflehog, gitleaks)
  breaker [release]        the emergency breaker; "release" lets every contained emergency revoke
  cluster                  the daemons sharing the store: alive or gone, last heartbeat, version, leases held
Break-glass (opens the store directly):
  token create|list|revoke per-person API tokens (--user U --role R [--keys PATTERN] [--expires 720h])
Other:
  version                  the version of this binary

Common flags: -c FILE (default $REKEY_CONFIG or rekey.yaml), -o table|json, --as NAME (acting person)
Exit codes: 0 ok, 1 error, 2 usage or configuration, 3 refused, 4 not found, 5 audit tampered,
6 rotate --wait ended failed/denied/cancelled/expired, 7 report matched a live credential.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	c := &cli{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr}
	cmds := map[string]func([]string) error{
		"run": c.runDaemon, "validate": c.validate, "plan": c.plan, "status": c.status, "rotations": c.rotations,
		"show": c.show, "audit": c.audit, "rotate": c.rotate, "approve": c.decide(rotator.VerdictApprove),
		"deny": c.decide(rotator.VerdictDeny), "cancel": c.cancel, "retry": c.retry, "submit": c.submit, "confirm": c.confirm,
		"report": c.report, "decommission": c.decommission, "breaker": c.breaker, "version": c.version,
		"token":   c.token,
		"cluster": c.cluster,
	}
	f, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "rekey: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	err := f(args[1:])
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "rekey: "+err.Error())
	return exitCode(err)
}

// usageError marks bad flags or arguments.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

var (
	errAuditTampered = errors.New("audit trail verification failed")
	// errUnsuccessful: rotate --wait saw the rotation end in a terminal
	// phase other than done.
	errUnsuccessful = errors.New("the rotation did not complete")
	// errLiveMatch: report found at least one live credential among the
	// findings (the rotations are started; CI should fail the build).
	errLiveMatch = errors.New("a finding matched a live credential")
)

func exitCode(err error) int {
	var ue usageError
	var ce config.Errors
	switch {
	case errors.As(err, &ue), errors.As(err, &ce):
		return exitUsage
	case errors.Is(err, errAuditTampered):
		return exitAudit
	case errors.Is(err, errUnsuccessful):
		return exitOutcome
	case errors.Is(err, errLiveMatch):
		return exitExposed
	case errors.Is(err, rotator.ErrNotFound):
		return exitNotFound
	case errors.Is(err, rotator.ErrActiveRotation), errors.Is(err, rotator.ErrBadState), errors.Is(err, rotator.ErrNoGate),
		errors.Is(err, rotator.ErrDecided), errors.Is(err, rotator.ErrNotApprover), errors.Is(err, rotator.ErrSelfApproval),
		errors.Is(err, rotator.ErrConflict), errors.Is(err, errRefused), errors.Is(err, rotator.ErrRejected):
		return exitRefused
	}
	return exitError
}

var errRefused = errors.New("refused")
