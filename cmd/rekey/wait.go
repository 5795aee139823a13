package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/rekeyhq/rekey/rotator"
)

// waitPoll is how often rotate --wait asks for the rotation, and how
// often the terminal line's countdown is redrawn.
const waitPoll = time.Second

// stepFloor is the shortest pause between two engine steps in break-glass
// mode (next_attempt_at has a one-second resolution in the API's views).
const stepFloor = 100 * time.Millisecond

// waitSettled follows a rotation until it ends or waits for a person. In
// break-glass mode there may be no daemon, so it runs the engine here
// between polls; through the API the daemon drives it and this only polls.
func (c *cli) waitSettled(ctx context.Context, cl *client, r rotationOut) ([]byte, rotationOut, error) {
	tty := c.stderrTTY()
	if c.tty != nil {
		tty = c.tty()
	}
	var raw []byte
	last := ""
	defer func() {
		if tty && last != "" {
			fmt.Fprintln(c.stderr)
		}
	}()
	for {
		if cl.step != nil {
			cl.step(ctx, r.ID)
		}
		var err error
		var cur rotationOut
		var out struct {
			Rotation *rotationOut `json:"rotation"`
		}
		raw, err = cl.get(ctx, "/v1/rotations/"+esc(r.ID), &out)
		if err != nil {
			return nil, r, err
		}
		if out.Rotation != nil {
			cur = *out.Rotation
		}
		if raw, err = rotationJSON(raw); err != nil {
			return nil, r, err
		}
		r = cur
		if r.settled() {
			return raw, r, nil
		}
		line := progressLine(r, time.Now())
		switch state := stateOf(r); {
		case tty:
			fmt.Fprintf(c.stderr, "\r\033[K%s", line)
			last = line
		case state != last: // a line per change, not per countdown tick
			fmt.Fprintf(c.stderr, "%s %s\n", time.Now().UTC().Format(time.RFC3339), line)
			last = state
		}
		pause := waitPoll
		if cl.step != nil { // the engine runs here: step again when the rotation is due
			if next := parseTime(r.NextAttemptAt); !next.IsZero() {
				pause = min(max(time.Until(next), stepFloor), waitPoll)
			}
		}
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return nil, r, ctx.Err()
		}
	}
}

// progressLine is the rotation's progress on one line; on a terminal it is
// redrawn every second, so its countdowns run.
func progressLine(r rotationOut, now time.Time) string {
	s := fmt.Sprintf("%s %s: %s", r.ID, r.Key, r.phaseLabel())
	switch {
	case r.Waiting != nil && r.Waiting.Reason == string(r.Phase):
		// "watching — watching for 401s on …", not "waiting for watching".
		s += " — " + strings.TrimPrefix(r.Waiting.describe(now), r.Waiting.Reason+": ")
	case r.Waiting != nil:
		s += " — waiting for " + r.Waiting.describe(now)
	case r.LastError != "":
		s += fmt.Sprintf(" — attempt %d failed: %s", r.Attempts, r.LastError)
		if t := parseTime(r.NextAttemptAt); !t.IsZero() {
			s += ", retry " + countdown(t, now)
		}
	default:
		if t := parseTime(r.NextAttemptAt); !t.IsZero() && t.After(now) {
			s += ", next step " + countdown(t, now)
		}
	}
	if d := r.Drain; r.Phase == rotator.PhaseDraining && r.Waiting == nil && !d.StartedAt.IsZero() {
		s += fmt.Sprintf(" — draining for %s, %d traffic reading(s)", human(now.Sub(d.StartedAt).Seconds()), d.Polls)
		if !d.QuietSince.IsZero() {
			s += ", quiet for " + human(now.Sub(d.QuietSince).Seconds())
		}
		if d.LastError != "" {
			s += "; last error: " + d.LastError
		}
	}
	return s
}

// stateOf is what a plain (non-terminal) progress line changes with.
func stateOf(r rotationOut) string {
	s := fmt.Sprintf("%s|%s|%d|%s|%s", r.Phase, r.Hold, r.Attempts, r.LastError, r.Outcome)
	if w := r.Waiting; w != nil {
		s += "|" + w.Reason + "|" + w.Detail + "|" + w.LastError
	}
	return s
}

// rotationJSON is the rotation object of a GET /v1/rotations/{id} answer,
// which is what rotate prints (the same object as without --wait).
func rotationJSON(raw []byte) ([]byte, error) {
	var out struct {
		Rotation json.RawMessage `json:"rotation"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, err
	}
	return out.Rotation, nil
}

func (c *cli) stderrTTY() bool {
	f, ok := c.stderr.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
