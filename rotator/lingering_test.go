package rotator_test

import (
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// A generation left live beside the current one (a revoke gate that
// expired) is flagged by plan with what would revoke it; a key whose
// unauthorized policy watches it says so.
func TestPlanFlagsALivePreviousGeneration(t *testing.T) {
	w := newCrashWorld(t, true)
	w.bootstrap()
	w.key.Approval = rotator.ApprovalPolicy{Gates: []rotator.Gate{rotator.GateRevoke}, ExpireAfter: time.Hour}
	w.restart("")
	r := w.trigger(rotator.TriggerRequest{Trigger: rotator.TriggerManual, Mode: rotator.ModeStaged})()
	if r, _ = w.drive(r.ID, nil); r.Phase != rotator.PhaseExpired {
		t.Fatalf("rotation ended %s, want expired (revoke gate)", r.Phase)
	}
	items, err := w.engine.Plan(w.ctx, w.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || len(items[0].Lingering) != 1 || items[0].Lingering[0].Name != "api-v1" ||
		!strings.Contains(items[0].Lingering[0].RevokedBy, "nothing revokes it on its own") {
		t.Fatalf("plan = %+v, want api-v1 flagged as live with nothing to revoke it", items)
	}
	w.key.Unauthorized = &rotator.TrafficWatch{Source: w.src, SourceName: "prometheus", Query: "sum(rate(http_401_total[5m]))"}
	w.restart("")
	items, _ = w.engine.Plan(w.ctx, w.clock.Now())
	if len(items[0].Lingering) != 1 || !strings.Contains(items[0].Lingering[0].RevokedBy, "policies.unauthorized revokes it at once when prometheus shows it in use") {
		t.Fatalf("plan = %+v, want the unauthorized policy named", items[0].Lingering)
	}
}
