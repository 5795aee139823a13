package policies

import (
	"fmt"
	"sort"

	"github.com/rekeyhq/rekey/rotator"
)

// Reasons of the unauthorized policy.
const (
	ReasonUnexplainedTraffic = "unexplained_traffic"
	ReasonNoLingering        = "no_lingering_credential"
	ReasonQuiet              = "no_unexplained_traffic"
)

// UnauthorizedName is the name of the unauthorized policy.
const UnauthorizedName = "unauthorized"

// Unauthorized revokes at once (emergency) a credential that should not be
// in use — a previous generation that was never revoked — when the traffic
// source reports its use above Threshold: someone holds a key nobody should
// have. The evidence (rate, source detail) goes into the decision's detail
// and so into the notification. A source error decides nothing.
//
//	policies:
//	  unauthorized:
//	    source: prom          # a traffic source
//	    query: '…'            # PromQL over {{.OldID}} / {{.OldName}}
//	    threshold: 0          # rate above which the use is unexplained
type Unauthorized struct {
	Threshold float64
}

// Name implements rotator.Policy.
func (Unauthorized) Name() string { return UnauthorizedName }

// Evaluate implements rotator.Policy.
func (u Unauthorized) Evaluate(in rotator.PolicyInput) rotator.Decision {
	if len(in.Lingering) == 0 {
		return rotator.Decision{Action: rotator.ActionNone, Policy: UnauthorizedName, Reason: ReasonNoLingering}
	}
	gens := make([]int, 0, len(in.Traffic))
	for g := range in.Traffic {
		gens = append(gens, g)
	}
	sort.Ints(gens)
	for _, g := range gens {
		r := in.Traffic[g]
		if r.Value > u.Threshold {
			return rotator.Decision{
				Action: rotator.ActionEmergency, Policy: UnauthorizedName, Reason: ReasonUnexplainedTraffic,
				Trigger: rotator.TriggerUnauthorized, Generation: g,
				Detail: fmt.Sprintf("generation %d should not be in use but shows traffic at rate %g (threshold %g): %s", g, r.Value, u.Threshold, r.Detail),
			}
		}
	}
	return rotator.Decision{Action: rotator.ActionNone, Policy: UnauthorizedName, Reason: ReasonQuiet}
}

var _ rotator.Policy = Unauthorized{}
