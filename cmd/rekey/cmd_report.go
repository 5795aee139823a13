package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/rekeyhq/rekey/app"
	"github.com/rekeyhq/rekey/webhooks/scanners"
)

func cmdReport(c *cli) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "report FILE",
		Short: "Submit a leak scanner's findings; exits 7 when one matches a live credential",
		Long: `Submit a leak scanner's findings (for CI pipelines). The daemon fingerprints
every token on reading and matches it against live credentials; a match starts
an emergency rotation and the command exits 7. Needs the responder role.

Arguments:
  FILE   the scanner's output file, or - for stdin`,
		Example: "  gitleaks detect --report-format json --report-path leaks.json; rekey report --format gitleaks leaks.json",
		Args:    args(1, "FILE (or - for stdin)"),
		RunE: func(cmd *cobra.Command, a []string) error {
			if format == "" {
				return usageError{"--format is required (" + strings.Join(scanners.Formats, ", ") + ")"}
			}
			in := c.stdin
			if a[0] != "-" {
				f, err := os.Open(a[0])
				if err != nil {
					return usageError{err.Error()}
				}
				defer f.Close()
				in = f
			}
			cl, err := c.connect("report", true)
			if err != nil {
				return err
			}
			defer cl.Close()
			var out struct {
				Findings int                `json:"findings"`
				Known    int                `json:"known"`
				Live     *int               `json:"live"` // nil: a daemon from before it was answered
				Results  []app.ReportResult `json:"results"`
			}
			raw, err := cl.do(cmd.Context(), http.MethodPost, "/v1/report?format="+url.QueryEscape(format), in, &out)
			if err != nil {
				return err
			}
			if out.Live == nil {
				for i := range out.Results {
					out.Results[i].Live = out.Results[i].Known
				}
			}
			if c.output == "json" {
				if err := printRaw(c.stdout, raw); err != nil {
					return err
				}
				return liveMatches(out.Results)
			}
			t := newTable("SOURCE", "WHERE", "MATCH", "ROTATION")
			live := 0
			for _, l := range out.Results {
				m := "no live credential"
				switch {
				case l.Known && !l.Live:
					m = fmt.Sprintf("%s generation %d, already revoked", l.Key, l.Generation)
				case l.Known:
					m = fmt.Sprintf("%s generation %d", l.Key, l.Generation)
					live++
				}
				if l.Duplicate {
					m += " (already reported)"
				}
				t.row(l.Source, l.URL, m, l.RotationID)
			}
			if err := t.write(c.stdout); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "%d finding(s), %d matched a live credential\n", out.Findings, live)
			return liveMatches(out.Results)
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "scanner output format: "+strings.Join(scanners.Formats, ", "))
	return cmd
}

// liveMatches fails the command (exit 7) when any finding matches a
// credential still live, so a CI step that runs `rekey report` fails the
// build — also when run again while the emergency the first run started
// has not revoked it yet, but not once it has.
func liveMatches(results []app.ReportResult) error {
	started, underway := 0, 0
	for _, l := range results {
		switch {
		case !l.Known || !l.Live:
		case l.Duplicate:
			underway++
		default:
			started++
		}
	}
	if started+underway == 0 {
		return nil
	}
	var what []string
	if started > 0 {
		what = append(what, fmt.Sprintf("%d emergency rotation(s) started", started))
	}
	if underway > 0 {
		what = append(what, fmt.Sprintf("%d already reported, not revoked yet", underway))
	}
	return fmt.Errorf("%d finding(s) matched a live credential (%s): %w", started+underway, strings.Join(what, "; "), errLiveMatch)
}

func cmdDecommission(c *cli) *cobra.Command {
	var reason string
	var yes bool
	cmd := &cobra.Command{
		Use:   "decommission KEY",
		Short: "Revoke every live credential of a key and remove it from its sinks",
		Long: `Revoke every live credential of a key and remove it from every sink, without a
replacement: consumers lose access at once. Asks for the key name on a
terminal (--yes otherwise). Needs the responder role.

Arguments:
  KEY   a key name, as rekey status lists them`,
		Example:           "  rekey decommission legacy-api --reason \"service retired\"",
		Args:              args(1, "KEY"),
		ValidArgsFunction: c.completeKeys,
		RunE: func(cmd *cobra.Command, a []string) error {
			if !yes {
				if err := c.confirmDestructive(fmt.Sprintf("Decommission %s: revoke EVERY live credential of it now and delete it from every sink. "+
					"Consumers lose access at once. Type the key name to go on: ", a[0]), a[0]); err != nil {
					return err
				}
			}
			cl, err := c.connect("decommission", true)
			if err != nil {
				return err
			}
			defer cl.Close()
			var r rotationOut
			raw, err := cl.post(cmd.Context(), "/v1/keys/"+esc(a[0])+"/decommission", map[string]string{"reason": reason}, &r)
			if err != nil {
				return err
			}
			return c.printRotation(raw, r)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded and notified)")
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation (required when stdin is not a terminal)")
	return cmd
}

// confirmDestructive asks a person at a terminal to type want; without a
// terminal it refuses (the caller must pass --yes).
func (c *cli) confirmDestructive(prompt, want string) error {
	f, ok := c.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return usageError{"refusing a destructive action without confirmation: not a terminal; pass --yes"}
	}
	fmt.Fprint(c.stderr, prompt)
	line, err := bufio.NewReader(io.LimitReader(f, 4096)).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != want {
		return fmt.Errorf("not confirmed; nothing was done: %w", errRefused)
	}
	return nil
}
