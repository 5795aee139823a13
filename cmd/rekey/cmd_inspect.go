package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rekeyhq/rekey/app"
	"github.com/rekeyhq/rekey/rotator"
)

func cmdPlan(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:     "plan",
		Short:   "What would happen to each key now, and why (no side effects)",
		Example: "  rekey plan\n  rekey plan -o json   # ages in seconds",
		Args:    args(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.connect("plan", false)
			if err != nil {
				return err
			}
			defer cl.Close()
			var out struct {
				Plan []app.PlanView `json:"plan"`
			}
			if c.output == "json" { // printed as answered: no need to decode it
				return cl.print(cmd.Context(), "/v1/plan", c.stdout)
			}
			if _, err := cl.get(cmd.Context(), "/v1/plan", &out); err != nil {
				return err
			}
			t := newTable("KEY", "ACTION", "AGE", "DUE", "WHY")
			for _, it := range out.Plan {
				why := it.Detail
				if it.Policy != "" {
					why = it.Policy + "/" + it.Reason + ": " + it.Detail
				}
				if len(it.Warnings) > 0 {
					why += " [warning: " + strings.Join(it.Warnings, "; ") + "]"
				}
				t.row(it.Key, it.Action, humanPtr(it.Age), dateOnly(it.Due), why)
			}
			return t.write(c.stdout)
		},
	}
}

// rawOr prints raw when err is nil (the -o json answer), else returns err.
func rawOr(c *cli, raw []byte, err error) error {
	if err != nil {
		return err
	}
	return printRaw(c.stdout, raw)
}

func cmdStatus(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:     "status",
		Short:   "Keys, their state and the active rotations",
		Example: "  rekey status\n  rekey status -o json",
		Args:    args(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.connect("status", false)
			if err != nil {
				return err
			}
			defer cl.Close()
			return c.status(cmd.Context(), cl)
		},
	}
}

// keyRow is what the status table shows of a key (app.KeyView): the
// answer's other fields, each key's gate proof above all, are not decoded.
type keyRow struct {
	Name       string              `json:"name"`
	Generation int                 `json:"generation"`
	Age        *int64              `json:"age"`
	NextDue    string              `json:"next_due"`
	State      string              `json:"state"`
	Sinks      []string            `json:"sinks"`
	Lingering  []rotator.Lingering `json:"lingering"`
	Exposed    *app.ExposedView    `json:"exposed,omitempty"`
}

// localKeyRows are the rows of GET /v1/keys taken from the daemon built
// in process, without encoding each key to JSON and decoding it again
// (10,000 keys are 10 MB of JSON). Should the store fail, the request is
// made through the API, which reports it as it always has.
func localKeyRows(ctx context.Context, cl *client) ([]keyRow, error) {
	views, err := cl.local.ReadableKeyViews(ctx, cl.principal)
	if err != nil {
		var keys struct {
			Keys []keyRow `json:"keys"`
		}
		_, err = cl.get(ctx, "/v1/keys", &keys)
		return keys.Keys, err
	}
	rows := make([]keyRow, len(views))
	for i, v := range views {
		rows[i] = keyRow{Name: v.Name, Generation: v.Generation, Age: v.Age, NextDue: v.NextDue, State: v.State, Sinks: v.Sinks, Lingering: v.Lingering, Exposed: v.Exposed}
	}
	return rows, nil
}

func (c *cli) status(ctx context.Context, cl *client) error {
	var keys struct {
		Keys []keyRow `json:"keys"`
	}
	var rawKeys struct {
		Keys json.RawMessage `json:"keys"`
	}
	var err error
	switch {
	case c.output == "json": // printed as answered: no need to decode each key
		_, err = cl.get(ctx, "/v1/keys", &rawKeys)
	case cl.local != nil:
		keys.Keys, err = localKeyRows(ctx, cl)
	default:
		_, err = cl.get(ctx, "/v1/keys", &keys)
	}
	if err != nil {
		return err
	}
	var active struct {
		Rotations []rotationOut `json:"rotations"`
	}
	rawActive, err := cl.get(ctx, activeQuery("", false), &active)
	if err != nil {
		return err
	}
	var bs app.BreakerView
	_, berr := cl.get(ctx, "/v1/breaker", &bs) // a key-scoped viewer may not read it
	if c.output == "json" {
		var a struct {
			Rotations json.RawMessage `json:"rotations"`
		}
		_ = json.Unmarshal(rawActive, &a)
		return printJSON(c.stdout, map[string]any{"keys": rawKeys.Keys, "active_rotations": a.Rotations})
	}
	t := newTable("KEY", "GEN", "AGE", "NEXT DUE", "STATE", "SINKS")
	for _, k := range keys.Keys {
		gen := ""
		if k.Generation > 0 {
			gen = fmt.Sprint(k.Generation)
		}
		t.row(k.Name, gen, humanPtr(k.Age), dateOnly(parseTime(k.NextDue)), k.State, strings.Join(k.Sinks, ","))
	}
	if err := t.write(c.stdout); err != nil {
		return err
	}
	for _, k := range keys.Keys {
		if x := k.Exposed; x != nil {
			fmt.Fprintf(c.stdout, "\n%s generation %d (%s): %s — rotation %s\n", k.Name, x.Generation, x.Name, x.Alert, x.RotationID)
		}
		for _, l := range k.Lingering {
			fmt.Fprintf(c.stdout, "\nLIVE PREVIOUS GENERATION: %s generation %d (%s) still works beside the current one; %s\n", k.Name, l.Generation, l.Name, l.RevokedBy)
		}
	}
	if berr == nil && bs.Open {
		fmt.Fprintf(c.stdout, "\nEMERGENCY BREAKER OPEN: %d automatic emergencies since %s (limit %d per %s); %d contained, waiting for a responder: rekey breaker release\n",
			bs.Recent, bs.Since.UTC().Format(time.RFC3339), bs.Max, human(bs.Window), len(bs.Contained))
	}
	if len(active.Rotations) > 0 {
		fmt.Fprintln(c.stdout)
		return rotationTable(active.Rotations).write(c.stdout)
	}
	return nil
}

func cmdRotations(c *cli) *cobra.Command {
	var all bool
	var key string
	cmd := &cobra.Command{
		Use:     "rotations",
		Short:   "List rotations (active ones unless --all)",
		Example: "  rekey rotations\n  rekey rotations --all --key payments-api",
		Args:    args(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.connect("rotations", false)
			if err != nil {
				return err
			}
			defer cl.Close()
			var out struct {
				Rotations []rotationOut `json:"rotations"`
			}
			raw, err := cl.get(cmd.Context(), activeQuery(key, all), &out)
			if err != nil || c.output == "json" {
				return rawOr(c, raw, err)
			}
			return rotationTable(out.Rotations).write(c.stdout)
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "include finished rotations")
	cmd.Flags().StringVar(&key, "key", "", "only this key (an unknown key exits 4)")
	return cmd
}

func cmdShow(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "show ROTATION",
		Short: "One rotation: phase, what it waits for, its approvals",
		Long: `Show one rotation: phase, what it waits for, its approvals.

Arguments:
  ROTATION   a rotation id (rot_…), as rekey rotations lists them`,
		Example:           "  rekey show rot_01JD2…",
		Args:              args(1, "ROTATION"),
		ValidArgsFunction: c.completeRotations,
		RunE: func(cmd *cobra.Command, a []string) error {
			cl, err := c.connect("show", false)
			if err != nil {
				return err
			}
			defer cl.Close()
			var out struct {
				Rotation  rotationOut `json:"rotation"`
				Approvals []struct {
					Gate     string `json:"gate"`
					Approver string `json:"approver"`
					Verdict  string `json:"verdict"`
					Via      string `json:"via"`
					At       string `json:"at"`
				} `json:"approvals"`
			}
			raw, err := cl.get(cmd.Context(), "/v1/rotations/"+esc(a[0]), &out)
			if err != nil || c.output == "json" {
				return rawOr(c, raw, err)
			}
			v := out.Rotation
			fmt.Fprintf(c.stdout, "rotation %s of %s\n  trigger:  %s by %s (%s)\n  mode:     %s\n  phase:    %s\n", v.ID, v.Key, v.Trigger, v.Actor, v.Reason, v.Mode, v.Phase)
			switch {
			case v.Waiting != nil:
				fmt.Fprintf(c.stdout, "  waiting:  %s\n", v.Waiting.describe(time.Now()))
			case v.Hold != "":
				fmt.Fprintf(c.stdout, "  waiting:  %s — %s\n", v.Hold, v.HoldDetail)
			}
			if v.Request != nil {
				fmt.Fprintf(c.stdout, "  pending:  %s by %s at %s (applied at the daemon's next step)\n", v.Request.Kind, v.Request.By, v.Request.At.UTC().Format(time.RFC3339))
			}
			if v.LastError != "" {
				fmt.Fprintf(c.stdout, "  error:    %s (%s, attempt %d, next %s)\n", v.LastError, v.ErrorReason, v.Attempts, v.NextAttemptAt)
			}
			fmt.Fprintf(c.stdout, "  generations: %d → %d\n", v.OldGeneration, v.NewGeneration)
			if v.Outcome != "" {
				fmt.Fprintf(c.stdout, "  outcome:  %s\n", v.Outcome)
			}
			for _, ap := range out.Approvals {
				fmt.Fprintf(c.stdout, "  %s %s: %s via %s at %s\n", ap.Gate, ap.Verdict, ap.Approver, ap.Via, ap.At)
			}
			return nil
		},
	}
}
