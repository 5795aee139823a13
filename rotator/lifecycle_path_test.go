package rotator_test

import (
	"slices"
	"testing"

	"github.com/rekeyhq/rekey/rotator"
)

// Each lifecycle's usual path (what notifiers draw as progress) starts at
// its Start, follows only edges the table has, and ends in done.
func TestLifecyclePathsEndInDone(t *testing.T) {
	want := map[string][]rotator.Phase{
		"staged": {rotator.PhaseAwaitingApproval, rotator.PhaseMinting, rotator.PhaseStaging, rotator.PhaseVerifying,
			rotator.PhaseCuttingOver, rotator.PhaseDraining, rotator.PhaseRevoking, rotator.PhaseWatching, rotator.PhaseCleaning, rotator.PhaseDone},
		"emergency":        {rotator.PhaseRevoking, rotator.PhaseMinting, rotator.PhaseStaging, rotator.PhaseVerifying, rotator.PhaseDone},
		"emergency_manual": {rotator.PhaseRevoking, rotator.PhaseMinting, rotator.PhaseStaging, rotator.PhaseCuttingOver, rotator.PhaseVerifying, rotator.PhaseConfirming, rotator.PhaseCleaning, rotator.PhaseDone},
		"decommission":     {rotator.PhaseRevoking, rotator.PhaseRemoving, rotator.PhaseDone},
	}
	for _, l := range rotator.Lifecycles() {
		got := l.Path()
		if !slices.Equal(got, want[l.Name]) {
			t.Errorf("%s: path %v, want %v", l.Name, got, want[l.Name])
		}
		for i := 1; i < len(got); i++ {
			spec, _ := l.Spec(got[i-1])
			if spec.Next[rotator.EdgeOK] != got[i] {
				t.Errorf("%s: %s → %s is not the table's usual edge", l.Name, got[i-1], got[i])
			}
		}
	}
}
