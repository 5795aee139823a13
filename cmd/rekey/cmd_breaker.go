package main

import (
	"fmt"
	"time"
)

// breaker shows the emergency breaker, or ("release") lets every contained
// emergency revoke and starts counting over — a responder's decision.
func (c *cli) breaker(args []string) error {
	fs, o := c.flags("breaker", true)
	pos, err := parse(fs, o, args, -1, "[release]")
	if err != nil {
		return err
	}
	if len(pos) > 1 || len(pos) == 1 && pos[0] != "release" {
		return usageError{"breaker: expected no argument or \"release\""}
	}
	d, err := c.open(o)
	if err != nil {
		return err
	}
	defer d.Close()
	if len(pos) == 1 {
		released, err := d.Engine.ReleaseBreaker(c.ctx, o.as, "cli")
		if err != nil {
			return err
		}
		if o.output == "json" {
			return printJSON(c.stdout, map[string]any{"released": released})
		}
		fmt.Fprintf(c.stdout, "breaker released by %s: %d contained emergencies revoke now\n", o.as, len(released))
		return nil
	}
	bs, err := d.Engine.Breaker(c.ctx)
	if err != nil {
		return err
	}
	if o.output == "json" {
		return printJSON(c.stdout, bs)
	}
	state := "closed"
	if bs.Open {
		state = "OPEN"
	}
	fmt.Fprintf(c.stdout, "emergency breaker %s: %d automatic emergencies since %s (limit %d per %s); %d contained\n",
		state, bs.Recent, bs.Since.UTC().Format(time.RFC3339), bs.Max, bs.Window, len(bs.Contained))
	for _, id := range bs.Contained {
		fmt.Fprintf(c.stdout, "  %s waits for a responder\n", id)
	}
	return nil
}
