package main

import (
	"fmt"
	"strings"
	"time"
)

// cluster shows the daemons sharing the store: state, last heartbeat,
// version and the rotations whose lease each holds.
func (c *cli) cluster(args []string) error {
	fs, o := c.flags("cluster", false)
	if _, err := parse(fs, o, args, 0, "no arguments"); err != nil {
		return err
	}
	d, err := c.open(o)
	if err != nil {
		return err
	}
	defer d.Close()
	v, err := d.Cluster(c.ctx, nil)
	if err != nil {
		return err
	}
	if o.output == "json" {
		return printJSON(c.stdout, v)
	}
	t := newTable("MEMBER", "STATE", "HEARTBEAT", "VERSION", "PID", "HOLDS")
	now := time.Now()
	for _, m := range v.Members {
		beat := m.HeartbeatAt
		if at, err := time.Parse(time.RFC3339Nano, m.HeartbeatAt); err == nil {
			beat = now.Sub(at).Round(time.Second).String() + " ago"
		}
		var holds []string
		for _, h := range m.Holds {
			holds = append(holds, fmt.Sprintf("%s (%s, %s)", h.Rotation, h.Key, h.Phase))
		}
		t.row(m.ID, m.State, beat, m.Version, fmt.Sprint(m.PID), strings.Join(holds, ", "))
	}
	fmt.Fprintf(c.stdout, "lease TTL %s; a member that misses its heartbeats for a TTL is gone and its rotations are taken over\n", v.LeaseTTL)
	return t.write(c.stdout)
}
