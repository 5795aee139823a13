package slack

import (
	"fmt"

	"github.com/rekeyhq/rekey/rotator"
)

// drainExit is the thread reply of a rotation leaving the drain gate, for
// what it was: passed, overridden by an exposure, or approved anyway. (A
// timeout is a hold, and a denial or cancel there a rollback: each has its
// own reply.) No field is ever printed empty.
func drainExit(f map[string]string) string {
	exit := f["exit"]
	if exit == "" && f["by"] != "" { // an event from before the exit field
		exit = rotator.DrainApprovedAnyway
		if f["by"] == "exposure" {
			exit = rotator.DrainOverridden
		}
	}
	switch exit {
	case rotator.DrainOverridden:
		return ":rotating_light: *Drain gate overridden*: the old key was exposed, so it is revoked now without waiting for traffic to drain" + pollsSeen(f)
	case rotator.DrainApprovedAnyway:
		who := "a person"
		if f["approved_by"] != "" {
			who = escape(f["approved_by"])
		}
		return ":warning: *Approved anyway* by " + who + ": the old key is revoked although traffic had not drained" + pollsSeen(f)
	}
	s := ":droplet: *Drained*: no failed authentication"
	if f["quiet_for"] != "" {
		s += " for " + escape(f["quiet_for"])
	}
	return s + pollsSeen(f)
}

// pollsSeen says what the gate saw, when it saw anything.
func pollsSeen(f map[string]string) string {
	polls, src := f["polls"], f["source"]
	if polls == "" || polls == "0" {
		return ""
	}
	s := " (" + escape(polls) + " polls"
	if src != "" {
		s += " of " + escape(src)
	}
	if v := f["last_value"]; v != "" && v != "0" && f["exit"] != rotator.DrainPassed {
		s += fmt.Sprintf(", last 401 rate %s", escape(v))
	}
	return s + ")"
}
