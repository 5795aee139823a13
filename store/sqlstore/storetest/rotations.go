package storetest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

func testRotationRoundTrip(t *testing.T, s rotator.Store) {
	ctx := ctxFor(t)
	paris := time.FixedZone("CET", 3600)
	r := &rotator.Rotation{
		ID: "rot-1", Key: "billing-api", Trigger: rotator.TriggerExposure, Actor: "github:secret-scanning",
		Reason: "exposure: found in a public repository", Mode: rotator.ModeEmergency,
		Phase: rotator.PhaseDraining, Hold: rotator.HoldDrainTimeout, HoldDetail: "401s after 2h",
		Attempts: 3, NextAttemptAt: base.Add(time.Minute).In(paris), LastError: "prometheus: HTTP 503",
		ErrorReason: rotator.ReasonTransient, OldGeneration: 4, NewGeneration: 5, TargetGeneration: 4,
		Drain: rotator.DrainState{StartedAt: base.In(paris), QuietSince: base.Add(time.Second), LastValue: 0.25,
			LastError: "timeout", Polls: 7, Escalated: true, Override: "revoke"},
		Watch:   rotator.WatchState{StartedAt: base.Add(time.Hour), Alerted: true, LastValue: 1.5},
		Outcome: "", RollbackTo: rotator.PhaseCancelled,
		Waiting: &rotator.Waiting{Reason: rotator.WaitTrafficError, Detail: "traffic source prom does not answer", Since: base.In(paris),
			NextCheck: base.Add(time.Minute), Deadline: base.Add(time.Hour), Progress: &rotator.Progress{Done: 12, Of: 30, Unit: "s"}, LastError: "timeout"},
		CreatedAt: base.Add(-time.Hour), UpdatedAt: base, PhaseStartedAt: base.Add(-time.Minute),
		Version: 0,
	}
	cred := &rotator.Credential{Key: "billing-api", Generation: 5, Name: "billing-api-v5", IssuerID: "key_123",
		Fingerprint: rotator.Fingerprint("new"), State: rotator.CredPending, RotationID: "rot-1", CreatedAt: base}
	evs := []rotator.AuditEvent{event("rot-1", "billing-api", "rotation.started"), event("rot-1", "billing-api", "credential.minted")}
	if err := s.CreateRotation(ctx, rotator.Commit{Rotation: r, Credentials: []*rotator.Credential{cred}, Audit: evs}); err != nil {
		t.Fatalf("create: %v", err)
	}
	for i, ev := range evs {
		if ev.Seq != int64(i+1) || ev.Hash == "" || (i > 0 && ev.PrevHash != evs[i-1].Hash) {
			t.Errorf("commit event %d not chained in place: %+v", i, ev)
		}
	}
	sameRotation(t, get(t, s, "rot-1"), r)
	active, err := s.ActiveRotation(ctx, "billing-api")
	if err != nil {
		t.Fatalf("active rotation: %v", err)
	}
	sameRotation(t, active, r)

	// A hold only a human clears parks the rotation at the engine's far
	// future, which must come back exactly (the engine compares it).
	r.Hold, r.NextAttemptAt = rotator.HoldConfirm, farFuture
	save(t, s, rotator.Commit{Rotation: r})
	if got := get(t, s, "rot-1"); !got.NextAttemptAt.Equal(farFuture) {
		t.Fatalf("far-future next attempt came back as %s", got.NextAttemptAt)
	}

	// A save bumps the version in the caller's rotation and in the store.
	r.Phase, r.Hold, r.Attempts, r.FinishedAt, r.Outcome, r.Waiting = rotator.PhaseDone, rotator.HoldNone, 0, base.Add(2*time.Hour), "done", nil
	save(t, s, rotator.Commit{Rotation: r})
	if r.Version != 2 {
		t.Fatalf("version after two saves = %d, want 2", r.Version)
	}
	sameRotation(t, get(t, s, "rot-1"), r)
	if _, err := s.ActiveRotation(ctx, "billing-api"); err == nil {
		t.Fatal("a done rotation is still active")
	}
	got, err := s.Audit(ctx, rotator.AuditFilter{})
	if err != nil {
		t.Fatalf("audit: %v", err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d audit events, want 2", len(got))
	}
	for i := range got {
		if !got[i].At.Equal(evs[i].At) || got[i].Hash != evs[i].Hash || !sameDetail(got[i].Detail, evs[i].Detail) {
			t.Errorf("stored event %d = %+v, want %+v", i, got[i], evs[i])
		}
	}
}

func sameDetail(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func testNotFound(t *testing.T, s rotator.Store) {
	ctx := ctxFor(t)
	_, err := s.GetRotation(ctx, "nope")
	wantErr(t, "get unknown rotation", err, rotator.ErrNotFound)
	_, err = s.ActiveRotation(ctx, "nope")
	wantErr(t, "active rotation of unknown key", err, rotator.ErrNotFound)
	err = s.Save(ctx, rotator.Commit{Rotation: newRotation("nope", "k")})
	wantErr(t, "save unknown rotation", err, rotator.ErrNotFound)
	_, _, err = s.Claim(ctx, "nope", "daemon-a", time.Minute)
	wantErr(t, "lease unknown rotation", err, rotator.ErrNotFound)
}

func testOptimisticConflict(t *testing.T, s rotator.Store) {
	conflict(t, s, s)
}

func sharedConflict(t *testing.T, a, b rotator.Store) {
	conflict(t, a, b)
}

// conflict saves two copies of one rotation read at the same version, one
// through each store: the second save must fail and change nothing.
func conflict(t *testing.T, a, b rotator.Store) {
	create(t, a, newRotation("rot-1", "k"))
	first, second := get(t, a, "rot-1"), get(t, b, "rot-1")
	first.Phase = rotator.PhaseStaging
	save(t, a, rotator.Commit{Rotation: first})
	second.Phase = rotator.PhaseCancelled
	err := b.Save(ctxFor(t), rotator.Commit{Rotation: second,
		Credentials: []*rotator.Credential{{Key: "k", Generation: 2, Name: "k-v2", State: rotator.CredPending}},
		Audit:       []rotator.AuditEvent{event("rot-1", "k", "rotation.cancelled")}})
	wantErr(t, "stale save", err, rotator.ErrConflict)
	if second.Version != 0 {
		t.Errorf("a refused save changed the caller's version to %d", second.Version)
	}
	sameRotation(t, get(t, b, "rot-1"), first)
	if creds, _ := b.Credentials(ctxFor(t), "k"); len(creds) != 0 {
		t.Errorf("a refused save stored credentials: %+v", creds)
	}
	if evs := allAudit(t, b); len(evs) != 1 {
		t.Errorf("a refused save appended audit events: %+v", evs)
	}
	// Re-read, re-apply: the retry succeeds.
	second = get(t, b, "rot-1")
	second.Phase = rotator.PhaseCancelled
	save(t, b, rotator.Commit{Rotation: second})
	if second.Version != 2 {
		t.Errorf("version after two saves = %d, want 2", second.Version)
	}
}

func testSaveIsAtomic(t *testing.T, s rotator.Store) {
	create(t, s, newRotation("rot-1", "k"))
	r := get(t, s, "rot-1")
	r.Phase = rotator.PhaseStaging
	// The second credential has no key: the whole commit must be refused.
	err := s.Save(ctxFor(t), rotator.Commit{Rotation: r,
		Credentials: []*rotator.Credential{{Key: "k", Generation: 2, Name: "k-v2"}, {Generation: 3}},
		Audit:       []rotator.AuditEvent{event("rot-1", "k", "phase")}})
	if err == nil {
		t.Fatal("a commit with an invalid credential was accepted")
	}
	if got := get(t, s, "rot-1"); got.Phase != rotator.PhaseMinting || got.Version != 0 {
		t.Errorf("rotation changed by a refused commit: phase %s version %d", got.Phase, got.Version)
	}
	if creds, _ := s.Credentials(ctxFor(t), "k"); len(creds) != 0 {
		t.Errorf("credentials stored by a refused commit: %+v", creds)
	}
	if evs := allAudit(t, s); len(evs) != 1 {
		t.Errorf("audit events appended by a refused commit: %d events", len(evs))
	}
	verifyClean(t, s)
}

func testListRotations(t *testing.T, s rotator.Store) {
	// a-1 (done), a-2 (active), b-1 (active), created one minute apart.
	for i, id := range []string{"a-1", "b-1", "a-2"} {
		r := newRotation(id, id[:1])
		r.CreatedAt = base.Add(time.Duration(i) * time.Minute)
		if id == "a-1" {
			r.Phase = rotator.PhaseDone
		}
		create(t, s, r)
	}
	tests := map[string]struct {
		filter rotator.RotationFilter
		want   []string
	}{
		"all, newest first": {rotator.RotationFilter{}, []string{"a-2", "b-1", "a-1"}},
		"one key":           {rotator.RotationFilter{Key: "a"}, []string{"a-2", "a-1"}},
		"active only":       {rotator.RotationFilter{ActiveOnly: true}, []string{"a-2", "b-1"}},
		"key and active":    {rotator.RotationFilter{Key: "a", ActiveOnly: true}, []string{"a-2"}},
		"limit":             {rotator.RotationFilter{Limit: 1}, []string{"a-2"}},
		"unknown key":       {rotator.RotationFilter{Key: "z"}, []string{}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rs, err := s.ListRotations(ctxFor(t), tc.filter)
			if err != nil {
				t.Fatalf("list: %v", err)
			}
			if got := ids(rs); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func testDueRotations(t *testing.T, s rotator.Store) {
	type rot struct {
		next time.Duration // after base
		hold rotator.Hold
		done bool
	}
	rots := map[string]rot{
		"overdue":     {next: -time.Hour},
		"due-now":     {next: 0},
		"late":        {next: -time.Minute},
		"future":      {next: time.Second},
		"held-expiry": {next: -2 * time.Hour, hold: rotator.HoldApproval}, // a hold is due at its expiry
		"held-human":  {next: farFuture.Sub(base), hold: rotator.HoldConfirm},
		"finished":    {next: -3 * time.Hour, done: true},
		"never-tried": {next: -24 * time.Hour},
	}
	for id, r := range rots {
		rr := newRotation(id, "key-"+id)
		rr.NextAttemptAt, rr.Hold = base.Add(r.next), r.hold
		if r.done {
			rr.Phase = rotator.PhaseFailed
		}
		create(t, s, rr)
	}
	tests := map[string]struct {
		now   time.Time
		limit int
		want  []string
	}{
		"due, most overdue first": {base, 0, []string{"never-tried", "held-expiry", "overdue", "late", "due-now"}},
		"limit":                   {base, 2, []string{"never-tried", "held-expiry"}},
		"later":                   {base.Add(time.Second), 0, []string{"never-tried", "held-expiry", "overdue", "late", "due-now", "future"}},
		"earlier":                 {base.Add(-25 * time.Hour), 0, []string{}},
		"end of time":             {farFuture, 0, []string{"never-tried", "held-expiry", "overdue", "late", "due-now", "future", "held-human"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rs, err := s.DueRotations(ctxFor(t), tc.now, tc.limit)
			if err != nil {
				t.Fatalf("due: %v", err)
			}
			if got := ids(rs); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func testOneActivePerKey(t *testing.T, s rotator.Store) {
	ctx := ctxFor(t)
	first := newRotation("rot-1", "k")
	create(t, s, first)
	err := s.CreateRotation(ctx, rotator.Commit{Rotation: newRotation("rot-2", "k")})
	wantErr(t, "second active rotation", err, rotator.ErrActiveRotation)
	create(t, s, newRotation("rot-other", "other-key"))

	first.Phase = rotator.PhaseDone
	save(t, s, rotator.Commit{Rotation: first})
	create(t, s, newRotation("rot-2", "k"))

	// A finished rotation cannot come back while another one is active.
	first.Phase = rotator.PhaseDraining
	err = s.Save(ctx, rotator.Commit{Rotation: first})
	wantErr(t, "reactivating a finished rotation", err, rotator.ErrActiveRotation)

	// Reusing a rotation id is a conflict, not a second active rotation.
	dup := newRotation("rot-1", "third-key")
	err = s.CreateRotation(ctx, rotator.Commit{Rotation: dup})
	wantErr(t, "duplicate rotation id", err, rotator.ErrConflict)
}

// concurrentCreate races 50 CreateRotation calls for one key, alternating
// between the two stores: exactly one wins, the others leave no trace.
func concurrentCreate(t *testing.T, a, b rotator.Store) {
	const n = 50
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			<-start
			r := newRotation(name("rot", i), "contended")
			errs[i] = s.CreateRotation(ctxFor(t), rotator.Commit{Rotation: r,
				Audit: []rotator.AuditEvent{event(r.ID, r.Key, "rotation.started")}})
		})
	}
	close(start)
	wg.Wait()
	winner := ""
	for i, err := range errs {
		switch {
		case err == nil && winner == "":
			winner = name("rot", i)
		case err == nil:
			t.Errorf("both %s and %s became the active rotation", winner, name("rot", i))
		default:
			wantErr(t, "losing create "+name("rot", i), err, rotator.ErrActiveRotation)
		}
	}
	if winner == "" {
		t.Fatal("no create succeeded")
	}
	for _, s := range []rotator.Store{a, b} {
		active, err := s.ActiveRotation(ctxFor(t), "contended")
		if err != nil || active.ID != winner {
			t.Errorf("active rotation = %v, %v; want %s", active, err, winner)
		}
		if evs := allAudit(t, s); len(evs) != 1 || evs[0].RotationID != winner {
			t.Errorf("audit after the race = %+v, want only the winner's event", evs)
		}
	}
	verifyClean(t, a)
}
