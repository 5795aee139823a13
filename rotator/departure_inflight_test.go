package rotator_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// departureRotations lists the rotations of api a departure requested.
func (e *env) departureRotations() []*rotator.Rotation {
	e.t.Helper()
	rs, err := e.store.ListRotations(e.ctx, rotator.RotationFilter{Key: "api"})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []*rotator.Rotation
	for _, r := range rs {
		if r.Trigger == rotator.TriggerDeparture {
			out = append(out, r)
		}
	}
	return out
}

// approveAndFinish has bob approve r's pending gate(s) and drives it to
// its end.
func (e *env) approveAndFinish(id string) *rotator.Rotation {
	e.t.Helper()
	for range 5 {
		r := e.run(id, 50)
		if r.Phase.Terminal() || r.Hold != rotator.HoldApproval {
			return r
		}
		if _, err := e.engine.Decide(e.ctx, rotator.ApproveRequest{RotationID: id, Approver: "bob@example.com", Verdict: rotator.VerdictApprove, Via: "api"}); err != nil {
			e.t.Fatal(err)
		}
	}
	return e.run(id, 50)
}

// A departure does not count a rotation in flight whose new generation
// was minted before the person left (here: delivered, waiting for its
// revoke approval) as the one that rotates the key away from them: it
// waits for that rotation to end, then rotates the key again, to a
// generation minted after the departure. On the code before, the
// departure adopted the rotation in flight, and the generation the person
// may have read from the sink stayed current.
func TestDepartureRotatesAgainAfterARotationMintedBeforeIt(t *testing.T) {
	e, inflight := gatedEnv(t, 1)
	minted := e.creds()[inflight.NewGeneration]
	e.clock.Advance(3 * time.Second)
	left := e.clock.Now()
	res, err := e.engine.ReportDeparture(e.ctx, rotator.DepartureReport{ID: "hr-1", Email: "carol@example.com", Via: "hr"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rotations) != 0 || !slices.Equal(res.Waiting, []string{"api"}) || !slices.Equal(res.Staged, []string{"api"}) {
		t.Fatalf("departure answered %+v: want api staged, waiting for %s, not adopting it", res, inflight.ID)
	}
	if r := e.approveAndFinish(inflight.ID); r.Phase != rotator.PhaseDone {
		t.Fatalf("rotation in flight ended %s", r.Phase)
	}
	if c := e.creds()[minted.Generation]; c.State != rotator.CredCurrent {
		t.Fatalf("generation %d is %s", c.Generation, c.State)
	}
	var follow []*rotator.Rotation
	for range 20 { // engine passes retry the pending departure
		e.engine.RunOnce(e.ctx)
		e.clock.Advance(10 * time.Second)
		if follow = e.departureRotations(); len(follow) > 0 {
			break
		}
	}
	if len(follow) != 1 || follow[0].Actor != "departure:hr" || follow[0].OldGeneration != minted.Generation {
		t.Fatalf("no rotation of generation %d (minted before carol left) after the rotation in flight ended: %+v", minted.Generation, follow)
	}
	if r := e.approveAndFinish(follow[0].ID); r.Phase != rotator.PhaseDone {
		t.Fatalf("departure's rotation ended %s", r.Phase)
	}
	for range 20 {
		e.engine.RunOnce(e.ctx)
		e.clock.Advance(time.Minute)
	}
	cur := e.creds()[follow[0].NewGeneration]
	if cur == nil || cur.State != rotator.CredCurrent || cur.CreatedAt.Before(left) {
		t.Fatalf("current generation %+v, want one minted after %s", cur, left)
	}
	if n := len(e.departureRotations()); n != 1 {
		t.Fatalf("%d departure rotations, want 1", n)
	}
	if !e.iss.isRevoked(minted.IssuerID) {
		t.Fatalf("generation %d, minted before carol left, is still live", minted.Generation)
	}
}

// A rotation in flight that has not minted yet (here: waiting for its
// start approval) is adopted: its new generation will be minted after
// the departure, so no second rotation follows.
func TestDepartureAdoptsARotationThatHasNotMintedYet(t *testing.T) {
	e := newEnv(t)
	e.key.Owners = []string{"alice@example.com", "carol@example.com"}
	e.key.Approval = rotator.ApprovalPolicy{Gates: []rotator.Gate{rotator.GateStart}, ExpireAfter: 24 * time.Hour}
	e.key.Drain.QuietPeriod = 0
	e.engine = e.newEngine(nil)
	e.bootstrap()
	inflight := e.manualByAlice(10, rotator.PhaseAwaitingApproval, rotator.HoldApproval)
	e.clock.Advance(3 * time.Second)
	left := e.clock.Now()
	res, err := e.engine.ReportDeparture(e.ctx, rotator.DepartureReport{ID: "hr-1", Email: "carol@example.com", Via: "hr"})
	if err != nil || !slices.Equal(res.Rotations, []string{inflight.ID}) || len(res.Waiting) != 0 {
		t.Fatalf("departure: %+v %v, want the rotation in flight adopted", res, err)
	}
	r := e.approveAndFinish(inflight.ID)
	if r.Phase != rotator.PhaseDone {
		t.Fatalf("adopted rotation ended %s", r.Phase)
	}
	for range 20 {
		e.engine.RunOnce(e.ctx)
		e.clock.Advance(time.Minute)
	}
	if c := e.creds()[r.NewGeneration]; c.State != rotator.CredCurrent || c.CreatedAt.Before(left) {
		t.Fatalf("generation %d: %s, minted %s; carol left %s", c.Generation, c.State, c.CreatedAt, left)
	}
	if rs := e.departureRotations(); len(rs) != 0 {
		t.Fatalf("the departure rotated again although the adopted rotation minted after it: %d", len(rs))
	}
}

// Without another owner the departure is an emergency; a staged rotation
// in flight whose new generation was minted before the departure is
// rolled back (that generation revoked), and the emergency then revokes
// the generation current before it and mints one after the departure.
func TestDepartureEmergencyDoesNotKeepAGenerationMintedBeforeIt(t *testing.T) {
	e, inflight := gatedEnv(t, 1)
	e.key.Owners = []string{"carol@example.com"}
	minted := e.creds()[inflight.NewGeneration]
	e.clock.Advance(3 * time.Second)
	left := e.clock.Now()
	em := e.departEmergency("carol@example.com", 100, 10*time.Second)
	if len(em) != 1 || em[0].Phase != rotator.PhaseDone || em[0].Mode != rotator.ModeEmergency {
		r, _ := e.store.GetRotation(e.ctx, inflight.ID)
		for _, c := range e.creds() {
			t.Logf("cred %+v", *c)
		}
		t.Fatalf("departure rotations %+v; in flight %s %s %s %s", em, r.Phase, r.Hold, r.Outcome, r.LastError)
	}
	creds := e.creds()
	for g, c := range creds {
		if c.State != rotator.CredRevoked && c.CreatedAt.Before(left) {
			t.Fatalf("generation %d, minted before carol left, is %s", g, c.State)
		}
	}
	if !e.iss.isRevoked(minted.IssuerID) || e.iss.liveCount() != 1 {
		t.Fatalf("generation %d revoked at the issuer: %v; %d live", minted.Generation, e.iss.isRevoked(minted.IssuerID), e.iss.liveCount())
	}
	// The rotation in flight was made to yield by the departure, and the
	// trail says so: not by "rekey".
	evs, err := e.store.Audit(e.ctx, rotator.AuditFilter{RotationID: inflight.ID})
	if err != nil {
		t.Fatal(err)
	}
	yielded := false
	for _, ev := range evs {
		if ev.Action == "preempted" {
			yielded = true
			if ev.Actor != "departure:hr" {
				t.Fatalf("the pre-emption is audited as %q, want departure:hr", ev.Actor)
			}
		}
	}
	if !yielded {
		t.Fatalf("the rotation in flight was never pre-empted: %v", evs)
	}
}

// An adopted rotation does not settle the departure by itself: denied (a
// person saw a routine manual rotation, not a departure), the key would
// keep a generation minted before the person left. The departure waits for
// it to end, then rotates the key itself. On the code before, the
// departure was finished at adoption and nothing followed the deny.
func TestDepartureRotatesWhenTheAdoptedRotationIsDenied(t *testing.T) {
	e := newEnv(t)
	e.key.Owners = []string{"alice@example.com", "carol@example.com"}
	e.key.Approval = rotator.ApprovalPolicy{Gates: []rotator.Gate{rotator.GateStart}, ExpireAfter: 24 * time.Hour}
	e.key.Drain.QuietPeriod = 0
	e.engine = e.newEngine(nil)
	e.bootstrap()
	before := e.creds()
	inflight := e.manualByAlice(10, rotator.PhaseAwaitingApproval, rotator.HoldApproval)
	e.clock.Advance(3 * time.Second)
	res, err := e.engine.ReportDeparture(e.ctx, rotator.DepartureReport{ID: "hr-1", Email: "carol@example.com", Via: "hr"})
	if err != nil || !slices.Equal(res.Rotations, []string{inflight.ID}) {
		t.Fatalf("departure: %+v %v, want the rotation in flight adopted", res, err)
	}
	follow := e.denyAndAwaitDeparture(inflight.ID, nil)
	if len(follow) != 1 || follow[0].Actor != "departure:hr" || follow[0].OldGeneration != len(before) {
		t.Fatalf("no departure rotation of generation %d after the adopted rotation was denied: %+v", len(before), follow)
	}
}

// "Minted after the departure" is decided by the store's order, not by
// comparing two daemons' clocks: a generation minted (and cut over) before
// the departure by a daemon whose clock runs two minutes fast is still
// one the person may have read. On the code before, its CreatedAt, later
// than the receiving daemon's clock, settled the departure at once.
func TestDepartureOrderIsTheStoresNotTheClocks(t *testing.T) {
	e, inflight := gatedEnv(t, 1)
	minted := e.creds()[inflight.NewGeneration]
	skewed := *minted
	skewed.CreatedAt = e.clock.Now().Add(2 * time.Minute) // the minting daemon's clock
	if err := e.store.Save(e.ctx, rotator.Commit{Credentials: []*rotator.Credential{&skewed}}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	res, err := e.engine.ReportDeparture(e.ctx, rotator.DepartureReport{ID: "hr-1", Email: "carol@example.com", Via: "hr"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Waiting, []string{"api"}) || len(res.Rotations) != 0 {
		t.Fatalf("departure answered %+v: want api waiting for %s, whose generation %d was minted before carol left", res, inflight.ID, minted.Generation)
	}
}

// The same for an emergency target: a contained emergency of the key
// already in flight (its revoke waits for a responder) that has not
// minted yet (its sinks do not answer) is adopted, not counted as done;
// denied by the responder, the departure's own
// emergency follows. On the code before, the departure was finished at
// adoption and the key kept the generation the person had seen.
func TestDepartureEmergencyFollowsADeniedEmergency(t *testing.T) {
	e := newEnv(t)
	e.key.Owners = []string{"carol@example.com"}
	e.key.Drain.QuietPeriod = 0
	e.engine = e.newEngine(nil)
	e.bootstrap()
	cur := len(e.creds())
	e.sinks[0].failOn("inspect", errors.New("sink unavailable"))
	inflight, err := e.engine.Trigger(e.ctx, rotator.TriggerRequest{Key: "api", Trigger: rotator.TriggerManual, Mode: rotator.ModeEmergency,
		TargetGeneration: cur, Actor: "alice@example.com", Contain: rotator.ContainLowTrust})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		e.engine.RunOnce(e.ctx)
		e.clock.Advance(10 * time.Second)
	}
	if r, _ := e.store.GetRotation(e.ctx, inflight.ID); r.Phase.Terminal() || r.NewGeneration != 0 {
		t.Fatalf("the emergency in flight is %s with generation %d, want it retrying before its mint", r.Phase, r.NewGeneration)
	}
	res, err := e.engine.ReportDeparture(e.ctx, rotator.DepartureReport{ID: "hr-1", Email: "carol@example.com", Via: "hr"})
	if err != nil || !slices.Equal(res.Emergency, []string{"api"}) || !slices.Equal(res.Rotations, []string{inflight.ID}) {
		t.Fatalf("departure: %+v %v, want the emergency in flight adopted", res, err)
	}
	follow := e.denyAndAwaitDeparture(inflight.ID, func() { e.sinks[0].failOn("inspect", nil) })
	if len(follow) != 1 || follow[0].Mode != rotator.ModeEmergency || follow[0].TargetGeneration != cur {
		t.Fatalf("no departure emergency of generation %d after the adopted one was denied: %+v", cur, follow)
	}
}

// The key's only owner leaves while a staged rotation drains: both live
// generations were theirs. The staged rotation rolls back without waiting
// for consumers to move back to a generation about to be revoked too, and
// the emergency follows at once: within minutes of engine time, not the
// quiet period (an hour here) or max_wait, every generation minted before
// the departure is revoked and one minted after it is current (outside
// tryout 3, finding 1).
func TestSoleOwnerLeavingDuringADrainRevokesBothGenerationsAtOnce(t *testing.T) {
	e := newEnv(t)
	e.key.Owners = []string{"erin@example.com"}
	e.key.Drain.QuietPeriod, e.key.Drain.MaxWait = time.Hour, 24*time.Hour
	e.engine = e.newEngine(nil)
	e.bootstrap()
	e.src.set(1, nil) // a consumer still uses the old key: the drain holds
	r := e.trigger(rotator.TriggerManual, "")
	r = e.runToPhase(r.ID, rotator.PhaseDraining)
	left := e.clock.Now()
	em := e.departEmergency("erin@example.com", 200, 5*time.Second)
	if len(em) != 1 || em[0].Phase != rotator.PhaseDone {
		t.Fatalf("the departure's emergency: %+v", em)
	}
	if took := e.clock.Now().Sub(left); took >= e.key.Drain.QuietPeriod {
		t.Fatalf("both generations stayed live %s after the departure (the rollback waited for consumers)", took)
	}
	live := 0
	for g, c := range e.creds() {
		if c.State == rotator.CredRevoked {
			continue
		}
		live++
		if g <= r.NewGeneration {
			t.Fatalf("generation %d, minted before erin left, is %s", g, c.State)
		}
	}
	if live != 1 || e.iss.liveCount() != 1 {
		t.Fatalf("%d live generations in the store, %d at the issuer, want 1", live, e.iss.liveCount())
	}
}

// departEmergency reports the departure of who, the only owner of key api
// (an emergency), and runs the engine — passes times, step apart — until
// the departure's rotation ends; it returns the departure's rotations.
func (e *env) departEmergency(who string, passes int, step time.Duration) []*rotator.Rotation {
	e.t.Helper()
	res, err := e.engine.ReportDeparture(e.ctx, rotator.DepartureReport{ID: "hr-1", Email: who, Via: "hr"})
	if err != nil || !slices.Equal(res.Emergency, []string{"api"}) {
		e.t.Fatalf("departure: %+v %v", res, err)
	}
	var em []*rotator.Rotation
	for range passes {
		e.engine.RunOnce(e.ctx)
		e.clock.Advance(step)
		if em = e.departureRotations(); len(em) == 1 && em[0].Phase.Terminal() {
			break
		}
	}
	return em
}

// denyAndAwaitDeparture denies the adopted rotation id (then runs between,
// if set), checks that it ends denied, and runs the engine until the
// departure's own rotation appears; it returns the departure's rotations.
func (e *env) denyAndAwaitDeparture(id string, between func()) []*rotator.Rotation {
	e.t.Helper()
	if _, err := e.engine.Decide(e.ctx, rotator.ApproveRequest{RotationID: id, Approver: "bob@example.com", Verdict: rotator.VerdictDeny, Via: "api"}); err != nil {
		e.t.Fatal(err)
	}
	if between != nil {
		between()
	}
	if r := e.run(id, 10); r.Phase != rotator.PhaseDenied {
		e.t.Fatalf("adopted rotation ended %s, want denied", r.Phase)
	}
	var follow []*rotator.Rotation
	for range 20 {
		e.engine.RunOnce(e.ctx)
		e.clock.Advance(10 * time.Second)
		if follow = e.departureRotations(); len(follow) > 0 {
			break
		}
	}
	return follow
}
