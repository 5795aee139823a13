package rotator_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

func exposure(id, fp string) rotator.ExposureReport {
	return rotator.ExposureReport{ID: id, Via: "generic", Source: "test", URL: "https://example.com/leak", Fingerprint: fp}
}

func TestExposureOfCurrentKeyRevokesFirst(t *testing.T) {
	e := newEnv(t)
	e.bootstrap()
	cur := e.creds()[1]
	res, err := e.engine.ReportExposure(e.ctx, exposure("r1", cur.Fingerprint))
	if err != nil || !res.Known || res.Key != "api" || res.Generation != 1 || res.RotationID == "" {
		t.Fatalf("result %+v err %v", res, err)
	}
	again, err := e.engine.ReportExposure(e.ctx, exposure("r1", cur.Fingerprint))
	if err != nil || !again.Duplicate || again.RotationID != res.RotationID {
		t.Fatalf("duplicate report: %+v %v", again, err)
	}
	r := e.run(res.RotationID, 50)
	if r.Phase != rotator.PhaseDone || r.Mode != rotator.ModeEmergency || !e.iss.isRevoked(cur.IssuerID) {
		t.Fatalf("phase %s mode %s revoked %v", r.Phase, r.Mode, e.iss.isRevoked(cur.IssuerID))
	}
	if rots, _ := e.store.ListRotations(e.ctx, rotator.RotationFilter{Key: "api"}); len(rots) != 2 {
		t.Fatalf("%d rotations, want bootstrap + one emergency", len(rots))
	}
}

func TestExposureOfUnknownTokenIsRecordedNotAnError(t *testing.T) {
	e := newEnv(t)
	e.bootstrap()
	res, err := e.engine.ReportExposure(e.ctx, exposure("r2", rotator.Fingerprint("not ours")))
	if err != nil || res.Known || res.RotationID != "" {
		t.Fatalf("result %+v err %v", res, err)
	}
	pending, _ := e.store.PendingInbound(e.ctx, 10)
	if len(pending) != 0 {
		t.Fatal("unknown exposure left pending")
	}
	if slices.Contains(e.notesKinds(), rotator.EventDigest) {
		t.Fatal("an unmatched report was echoed at once instead of digested")
	}
	e.clock.Advance(rotator.DefaultRetention.Digest)
	e.engine = e.newEngine(nil) // the digest survives a restart
	e.engine.RunOnce(e.ctx)
	if !slices.Contains(e.notesKinds(), rotator.EventDigest) {
		t.Fatal("unknown exposure never reported in a digest")
	}
}

// An exposure of the old key while a staged rotation drains: the old key is
// revoked at once, without waiting for the gate.
func TestExposureDuringDrainRevokesAtOnce(t *testing.T) {
	e := newEnv(t)
	e.bootstrap()
	old := e.creds()[1]
	e.src.set(4, nil) // consumers still failing: the gate would hold
	r := e.run(e.trigger(rotator.TriggerManual, "").ID, 10)
	if r.Phase != rotator.PhaseDraining {
		t.Fatalf("phase %s", r.Phase)
	}
	res, err := e.engine.ReportExposure(e.ctx, exposure("r3", old.Fingerprint))
	if err != nil || res.RotationID != r.ID {
		t.Fatalf("result %+v err %v", res, err)
	}
	r = e.run(r.ID, 5)
	if !e.iss.isRevoked(old.IssuerID) {
		t.Fatalf("exposed old key not revoked at once (phase %s)", r.Phase)
	}
	e.wantAnnounced(t, "generation 1", "skips its drain gate")
}

// wantAnnounced checks one critical notification says the staged rotation
// was overridden by an exposure, with the words given; it names the key's
// owners (mentioned, paged) and the exposure as its actor, as does the
// pre-emption's audit event — not "rekey" for nobody.
func (e *env) wantAnnounced(t *testing.T, words ...string) {
	t.Helper()
	e.engine.Close(time.Second)
	evs, err := e.store.Audit(e.ctx, rotator.AuditFilter{Key: "api"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if (ev.Action == "preempted" || ev.Action == "drain.override") && ev.Actor != "exposure:generic" {
			t.Errorf("%s audited as %q, want exposure:generic", ev.Action, ev.Actor)
		}
	}
	e.notes.mu.Lock()
	defer e.notes.mu.Unlock()
	n := 0
	for _, ev := range e.notes.evs {
		if ev.Kind != rotator.EventPreempted {
			continue
		}
		n++
		if !slices.Equal(ev.Owners, e.key.Owners) || ev.Actor != "exposure:generic" {
			t.Errorf("override announced by %q to %v, want by exposure:generic to the owners %v", ev.Actor, ev.Owners, e.key.Owners)
		}
		for _, w := range words {
			if ev.Severity != rotator.SeverityCritical || !strings.Contains(ev.Message, w) {
				t.Fatalf("override announced as %s %q, want critical with %q", ev.Severity, ev.Message, w)
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d notifications of the override, want 1", n)
	}
}

// An exposure of the current key while a staged rotation has not cut over:
// the staged one rolls back, then the emergency runs.
func TestExposureBeforeCutOverSupersedesStagedRotation(t *testing.T) {
	e := newEnv(t)
	e.key.Approval = rotator.ApprovalPolicy{Gates: []rotator.Gate{rotator.GateStart}}
	e.bootstrap()
	cur := e.creds()[1]
	staged := e.run(e.trigger(rotator.TriggerManual, "").ID, 5)
	if staged.Hold != rotator.HoldApproval {
		t.Fatalf("staged rotation not waiting for approval: %s", staged.Phase)
	}
	if _, err := e.engine.ReportExposure(e.ctx, exposure("r4", cur.Fingerprint)); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		e.engine.RunOnce(e.ctx)
		e.clock.Advance(time.Second)
	}
	if s, _ := e.store.GetRotation(e.ctx, staged.ID); s.Phase != rotator.PhaseCancelled {
		t.Fatalf("staged rotation %s, want cancelled", s.Phase)
	}
	if !e.iss.isRevoked(cur.IssuerID) {
		t.Fatal("exposed key not revoked")
	}
	if pending, _ := e.store.PendingInbound(e.ctx, 10); len(pending) != 0 {
		t.Fatalf("exposure still pending: %+v", pending)
	}
	e.wantAnnounced(t, "generation 1", "rolls back, then an emergency")
}

func TestDepartureTakesTwoPaths(t *testing.T) {
	for name, tc := range map[string]struct {
		owners []string
		want   rotator.Mode
	}{
		"another owner on file: staged": {owners: []string{"alice@example.com", "bob@example.com"}, want: rotator.ModeStaged},
		"no other owner: emergency":     {owners: []string{"alice@example.com"}, want: rotator.ModeEmergency},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.key.Owners = tc.owners
			e.bootstrap()
			res, err := e.engine.ReportDeparture(e.ctx, rotator.DepartureReport{ID: "d1", Email: "Alice@Example.com", Actor: "hr"})
			if err != nil || len(res.Rotations) != 1 {
				t.Fatalf("result %+v err %v", res, err)
			}
			r, _ := e.store.GetRotation(e.ctx, res.Rotations[0])
			if r.Mode != tc.want || r.Trigger != rotator.TriggerDeparture {
				t.Fatalf("mode %s trigger %s, want %s departure", r.Mode, r.Trigger, tc.want)
			}
			if tc.want == rotator.ModeStaged && (len(res.Staged) != 1 || len(res.Emergency) != 0) {
				t.Fatalf("result %+v", res)
			}
			if r = e.run(r.ID, 100); r.Phase != rotator.PhaseDone {
				t.Fatalf("phase %s", r.Phase)
			}
			if dup, _ := e.engine.ReportDeparture(e.ctx, rotator.DepartureReport{ID: "d1", Email: "alice@example.com"}); !dup.Duplicate {
				t.Fatal("repeated departure not de-duplicated")
			}
		})
	}
}

// A report a person submitted through the admin API names that person as
// the emergency's actor; a webhook's names its channel.
func TestExposureActorIsTheReporter(t *testing.T) {
	e := newEnv(t)
	e.bootstrap()
	cur := e.creds()[1]
	rep := exposure("r-person", cur.Fingerprint)
	rep.Reporter = "rita@example.com"
	res, err := e.engine.ReportExposure(e.ctx, rep)
	if err != nil || res.RotationID == "" {
		t.Fatalf("result %+v err %v", res, err)
	}
	r, err := e.store.GetRotation(e.ctx, res.RotationID)
	if err != nil || r.Actor != "rita@example.com" {
		t.Fatalf("actor %q (%v), want the reporter", r.Actor, err)
	}
}

// A report sent again after its emergency revoked the credential is a
// duplicate that matched a credential (Known) no longer live; while the
// emergency has not revoked it yet, it is still live. `rekey report` run
// again over the same scanner output relies on this not to claim a live
// match (and fail CI) for a generation already revoked.
func TestDuplicateExposureSaysWhetherStillLive(t *testing.T) {
	e := newEnv(t)
	e.bootstrap()
	cur := e.creds()[1]
	first, err := e.engine.ReportExposure(e.ctx, exposure("r1", cur.Fingerprint))
	if err != nil || !first.Known || !first.Live || first.Duplicate {
		t.Fatalf("first report: %+v %v", first, err)
	}
	before, err := e.engine.ReportExposure(e.ctx, exposure("r1", cur.Fingerprint))
	if err != nil || !before.Duplicate || !before.Known || !before.Live {
		t.Fatalf("report again before the revoke: %+v %v", before, err)
	}
	if r := e.run(first.RotationID, 50); r.Phase != rotator.PhaseDone {
		t.Fatalf("emergency: %s %s", r.Phase, r.LastError)
	}
	after, err := e.engine.ReportExposure(e.ctx, exposure("r1", cur.Fingerprint))
	if err != nil || !after.Duplicate || !after.Known || after.Live || after.Key != "api" || after.RotationID != first.RotationID {
		t.Fatalf("report again after the revoke: %+v %v", after, err)
	}
}
