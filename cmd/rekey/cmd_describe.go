package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rekeyhq/rekey/app"
)

func cmdDescribe(c *cli) *cobra.Command {
	var history int
	cmd := &cobra.Command{
		Use:   "describe KEY",
		Short: "A key: policy, credentials by generation, what each sink holds, history, next due",
		Long: `Describe a key: its policy (schedule, max_age, gates, drain), its credentials by
generation (id, fingerprint prefix, state, age), what each sink holds (generation
names, never values), its recent rotations and when it is next due.

Arguments:
  KEY   a key name, as rekey status lists them`,
		Example:           "  rekey describe payments-api\n  rekey describe payments-api --history 50 -o json",
		Args:              args(1, "KEY"),
		ValidArgsFunction: c.completeKeys,
		RunE: func(cmd *cobra.Command, a []string) error {
			cl, err := c.connect("describe", false)
			if err != nil {
				return err
			}
			defer cl.Close()
			var d app.KeyDescription
			raw, err := cl.get(cmd.Context(), fmt.Sprintf("/v1/keys/%s?history=%d", esc(a[0]), history), &d)
			if err != nil || c.output == "json" {
				return rawOr(c, raw, err)
			}
			return describeSections(c.stdout, &d, time.Now())
		},
	}
	cmd.Flags().IntVar(&history, "history", 10, "how many recent rotations to list")
	return cmd
}

// describeSections renders a key description, one section after another.
func describeSections(w io.Writer, d *app.KeyDescription, now time.Time) error {
	for _, section := range []func(io.Writer, *app.KeyDescription, time.Time) error{
		describeKey, describePolicy, describeGate, describeCredentials, describeSinks, describeConsumers, describeHistory,
	} {
		if err := section(w, d, now); err != nil {
			return err
		}
	}
	return nil
}

func describeKey(w io.Writer, d *app.KeyDescription, _ time.Time) error {
	k := d.Key
	fmt.Fprintf(w, "key %s\n", k.Name)
	if d.Description != "" {
		fmt.Fprintf(w, "  description: %s\n", d.Description)
	}
	owners := strings.Join(k.Owners, ", ")
	if len(k.DepartedOwners) > 0 {
		owners = strings.TrimPrefix(owners+" (departed: "+strings.Join(k.DepartedOwners, ", ")+")", " ")
	}
	fmt.Fprintf(w, "  issuer:      %s\n  owners:      %s\n", k.Issuer, owners)
	if d.Team != "" {
		fmt.Fprintf(w, "  team:        %s\n", d.Team)
	}
	fmt.Fprintf(w, "  state:       %s\n", k.State)
	next := "-"
	if t := parseTime(k.NextDue); !t.IsZero() {
		next = t.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(w, "  next due:    %s (plan: %s", next, k.Plan)
	if k.Reason != "" {
		fmt.Fprintf(w, ", %s", k.Reason)
	}
	_, err := fmt.Fprintln(w, ")")
	return err
}

func describePolicy(w io.Writer, d *app.KeyDescription, _ time.Time) error {
	p := d.Policy
	fmt.Fprintf(w, "\npolicy\n  schedule:    %s\n", p.Schedule)
	if p.MaxAge > 0 {
		fmt.Fprintf(w, "  max_age:     %s\n", human(p.MaxAge))
	}
	if p.Windows > 0 {
		fmt.Fprintf(w, "  windows:     %d (staged rotations start only inside them)\n", p.Windows)
	}
	fmt.Fprintf(w, "  verify:      %t\n  bootstrap:   %t\n", p.Verify, p.Bootstrap)
	if a := p.Approval; a != nil {
		gates := make([]string, 0, len(a.Gates))
		for _, g := range a.Gates {
			gates = append(gates, string(g))
		}
		who := "anyone but the requester"
		if len(a.Approvers) > 0 {
			who = strings.Join(a.Approvers, ", ")
		}
		fmt.Fprintf(w, "  gates:       %s (%d approval(s)", strings.Join(gates, ", "), a.Required)
		if a.RevokeRequired > 0 {
			fmt.Fprintf(w, ", %d to revoke", a.RevokeRequired)
		}
		fmt.Fprintf(w, " from %s)\n", who)
	} else {
		fmt.Fprintln(w, "  gates:       none")
	}
	if dr := p.Drain; dr != nil {
		fmt.Fprintf(w, "  drain:       %s, quiet %s, at most %s, every %s\n", dr.Source, human(dr.QuietPeriod), human(dr.MaxWait), human(dr.PollInterval))
	} else {
		fmt.Fprintln(w, "  drain:       none (revoke follows cut-over)")
	}
	if p.Watch > 0 {
		fmt.Fprintf(w, "  watch:       %s after revoke\n", human(p.Watch))
	}
	return nil
}

func describeCredentials(w io.Writer, d *app.KeyDescription, _ time.Time) error {
	fmt.Fprintln(w, "\ncredentials")
	if len(d.Credentials) == 0 {
		_, err := fmt.Fprintln(w, "  none yet (bootstrap: rekey rotate "+d.Key.Name+" --bootstrap)")
		return err
	}
	t := newTable("  GEN", "NAME", "ISSUER ID", "FINGERPRINT", "STATE", "AGE")
	for _, cr := range d.Credentials {
		state := string(cr.State)
		if cr.Alert != "" {
			state += " (" + cr.Alert + ")"
		}
		t.row("  "+strconv.Itoa(cr.Generation), cr.Name, cr.IssuerID, cr.Fingerprint, state, human(cr.Age))
	}
	return t.write(w)
}

func describeSinks(w io.Writer, d *app.KeyDescription, _ time.Time) error {
	fmt.Fprintln(w, "\nsinks")
	t := newTable("  SINK", "TARGET", "CURRENT", "PENDING", "PREVIOUS", "NOTE")
	for _, s := range d.Sinks {
		note := ""
		switch {
		case s.Error != "":
			note = "cannot read: " + s.Error
		case !s.Exists:
			note = "nothing delivered yet"
		case !s.Managed:
			note = "not managed by rekey"
		}
		t.row("  "+s.Sink, s.Target, s.Current, s.Pending, s.Previous, note)
	}
	return t.write(w)
}

func describeHistory(w io.Writer, d *app.KeyDescription, _ time.Time) error {
	fmt.Fprintln(w, "\nrecent rotations")
	if len(d.History) == 0 {
		_, err := fmt.Fprintln(w, "  none")
		return err
	}
	t := newTable("  ROTATION", "TRIGGER", "MODE", "PHASE", "BY", "CREATED", "OUTCOME")
	for _, r := range d.History {
		t.row("  "+r.ID, string(r.Trigger), string(r.Mode), string(r.Phase), r.Actor, r.CreatedAt, r.Outcome)
	}
	return t.write(w)
}

// describeGate says what the key's drain gate proves before a revoke, and
// what it cannot see.
func describeGate(w io.Writer, d *app.KeyDescription, _ time.Time) error {
	g := d.Key.Gate
	if g == nil {
		return nil
	}
	fmt.Fprintf(w, "\ndrain gate\n  proves:      %s\n", g.Proves)
	if g.Warning != "" {
		fmt.Fprintf(w, "  WARNING:     %s\n", g.Warning)
	}
	return nil
}

// describeConsumers lists the consumers that attested a generation: those
// behind still hold the drain gate, stale ones (silent past the horizon) no
// longer do.
func describeConsumers(w io.Writer, d *app.KeyDescription, now time.Time) error {
	cv := d.Consumers
	if cv == nil {
		return nil
	}
	fmt.Fprintf(w, "\nconsumers (current generation %d", cv.Current)
	if cv.Horizon > 0 {
		fmt.Fprintf(w, ", horizon %s", human(cv.Horizon))
	}
	fmt.Fprintln(w, ")")
	t := newTable("  CONSUMER", "GEN", "NAME", "STATE", "LAST SEEN")
	for _, c := range cv.Consumers {
		seen := "-"
		if ts := parseTime(c.LastSeen); !ts.IsZero() {
			seen = human(now.Sub(ts).Seconds()) + " ago"
		}
		t.row("  "+c.Name, fmt.Sprint(c.Generation), c.GenerationName, c.State, seen)
	}
	return t.write(w)
}
