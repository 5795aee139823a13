package policies

import (
	"strings"
	"testing"

	"github.com/rekeyhq/rekey/rotator"
)

func TestUnauthorized(t *testing.T) {
	prev := &rotator.Credential{Generation: 3, State: rotator.CredPrevious}
	tests := map[string]struct {
		in      rotator.PolicyInput
		action  rotator.Action
		reason  string
		gen     int
		inCause string
	}{
		"no lingering credential": {in: rotator.PolicyInput{}, action: rotator.ActionNone, reason: ReasonNoLingering},
		"lingering but quiet": {in: rotator.PolicyInput{Lingering: []*rotator.Credential{prev}, Traffic: map[int]rotator.Reading{3: {Value: 0}}},
			action: rotator.ActionNone, reason: ReasonQuiet},
		"lingering with no reading (source failed)": {in: rotator.PolicyInput{Lingering: []*rotator.Credential{prev}},
			action: rotator.ActionNone, reason: ReasonQuiet},
		"lingering and used": {in: rotator.PolicyInput{Lingering: []*rotator.Credential{prev}, Traffic: map[int]rotator.Reading{3: {Value: 0.4, Detail: "2 series"}}},
			action: rotator.ActionEmergency, reason: ReasonUnexplainedTraffic, gen: 3, inCause: "rate 0.4"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := Unauthorized{}.Evaluate(tc.in)
			if d.Action != tc.action || d.Reason != tc.reason || d.Generation != tc.gen || !strings.Contains(d.Detail, tc.inCause) {
				t.Fatalf("decision %+v", d)
			}
			if d.Action == rotator.ActionEmergency && d.Trigger != rotator.TriggerUnauthorized {
				t.Fatalf("trigger %s", d.Trigger)
			}
		})
	}
}
