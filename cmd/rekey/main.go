// Command rekey rotates API keys without downtime. `rekey run` is the
// daemon. Every other verb is a client of its admin API (REKEY_ADDR and a
// credential: the CLI holds no production secret and no store), or, as an
// explicit emergency path recorded in the audit trail, opens the store
// itself (--break-glass, with the configuration file).
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns its exit code (exit.go).
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &cli{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv}
	root := c.root()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	if outputIn(args) == "json" { // asked for, though parsing stopped before it
		c.output = "json"
	}
	return c.fail(err)
}

// outputIn finds -o/--output in args before they are parsed, so that an
// error in parsing them is reported as JSON too when JSON was asked for.
func outputIn(args []string) string {
	for i, a := range args {
		switch {
		case a == "--":
			return ""
		case a == "-o" || a == "--output":
			if i+1 < len(args) {
				return args[i+1]
			}
		case strings.HasPrefix(a, "--output="):
			return strings.TrimPrefix(a, "--output=")
		case strings.HasPrefix(a, "-o") && len(a) > 2:
			return strings.TrimPrefix(strings.TrimPrefix(a, "-o"), "=")
		}
	}
	return ""
}
