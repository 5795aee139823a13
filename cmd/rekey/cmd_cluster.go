package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rekeyhq/rekey/app"
)

func cmdCluster(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "cluster",
		Short: "The daemons sharing the store: state, last heartbeat, version, the rotations each holds",
		Long: `cluster lists the daemons that share the store (docs/HA.md): each one's state
(alive, gone — it missed its heartbeats for a lease TTL and its rotations are
taken over — or left), its last heartbeat, version and process id, and the
rotations whose lease it holds.`,
		Example: "  rekey cluster\n  rekey cluster -o json   # lease_ttl in seconds",
		Args:    args(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.connect("cluster", false)
			if err != nil {
				return err
			}
			defer cl.Close()
			var v app.ClusterView
			raw, err := cl.get(cmd.Context(), "/v1/cluster", &v)
			if err != nil || c.output == "json" {
				return rawOr(c, raw, err)
			}
			t := newTable("MEMBER", "STATE", "HEARTBEAT", "VERSION", "PID", "HOLDS")
			now := time.Now()
			for _, m := range v.Members {
				beat := m.HeartbeatAt
				if at := parseTime(m.HeartbeatAt); !at.IsZero() {
					beat = human(now.Sub(at).Round(time.Second).Seconds()) + " ago"
				}
				var holds []string
				for _, h := range m.Holds {
					holds = append(holds, fmt.Sprintf("%s (%s, %s)", h.Rotation, h.Key, h.Phase))
				}
				t.row(m.ID, m.State, beat, m.Version, fmt.Sprint(m.PID), strings.Join(holds, ", "))
			}
			fmt.Fprintf(c.stdout, "lease TTL %s; a member that misses its heartbeats for a TTL is gone and its rotations are taken over\n", human(v.LeaseTTL))
			return t.write(c.stdout)
		},
	}
}
