package storetest

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// testLease walks one rotation's lease through claims, renewals, expiry (by
// the database's clock: a negative TTL is a lease that has run out) and
// releases, checking the epoch that fences commits.
func testLease(t *testing.T, s rotator.Store) {
	create(t, s, newRotation("rot-1", "k"))
	ctx := ctxFor(t)
	claim := func(owner string, ttl time.Duration, want bool) rotator.Lease {
		t.Helper()
		l, ok, err := s.Claim(ctx, "rot-1", owner, ttl)
		if err != nil || ok != want {
			t.Fatalf("claim by %s = %v, %v; want %v", owner, ok, err, want)
		}
		return l
	}
	renew := func(l rotator.Lease, want bool) {
		t.Helper()
		ok, err := s.Renew(ctx, "rot-1", l, time.Hour)
		if err != nil || ok != want {
			t.Fatalf("renew %+v = %v, %v; want %v", l, ok, err, want)
		}
	}
	a1 := claim("a", time.Hour, true)
	claim("b", time.Hour, false) // held
	renew(a1, true)
	// The same owner claiming again gets a new epoch, which fences the first.
	a2 := claim("a", time.Hour, true)
	if a2.Epoch <= a1.Epoch {
		t.Fatalf("epoch %d after %d: every claim must increase it", a2.Epoch, a1.Epoch)
	}
	renew(a1, false)
	// A lease that ran out (by the database's clock) is taken over.
	a3 := claim("a", -time.Second, true)
	b := claim("b", time.Hour, true)
	if b.Epoch <= a3.Epoch {
		t.Fatalf("takeover epoch %d after %d", b.Epoch, a3.Epoch)
	}
	renew(a3, false)
	if err := s.Release(ctx, "rot-1", a3); err != nil { // not a's any more: a no-op
		t.Fatal(err)
	}
	claim("a", time.Hour, false)
	if err := s.Release(ctx, "rot-1", b); err != nil {
		t.Fatal(err)
	}
	claim("a", time.Hour, true)
	// A lease is not a state change: it leaves the version alone.
	if v := get(t, s, "rot-1").Version; v != 0 {
		t.Errorf("version after leases = %d, want 0", v)
	}
}

// testLeaseFencing: a commit under a lease applies only while that lease
// (owner and epoch) holds the rotation unexpired; a stale holder's commit
// writes nothing — no state, no audit event, no notification.
func testLeaseFencing(t *testing.T, s rotator.Store) {
	create(t, s, newRotation("rot-1", "k"))
	ctx := ctxFor(t)
	old, ok, err := s.Claim(ctx, "rot-1", "a", time.Hour)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	r := get(t, s, "rot-1")
	commit := func(l rotator.Lease, phase rotator.Phase) error {
		r.Phase = phase
		return s.Save(ctx, rotator.Commit{Rotation: r, Lease: &l,
			Audit:  []rotator.AuditEvent{{At: base, RotationID: "rot-1", Key: "k", Actor: l.Owner, Action: "step"}},
			Outbox: []rotator.Notification{{Notifier: "n", Event: rotator.Event{Kind: rotator.EventStarted, RotationID: "rot-1", Key: "k"}}}})
	}
	if err := commit(old, rotator.PhaseMinting); err != nil {
		t.Fatalf("commit by the holder: %v", err)
	}
	// a's lease runs out (a claim that expired at once); then b takes over.
	stale, _, err := s.Claim(ctx, "rot-1", "a", -time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := commit(stale, rotator.PhaseStaging); err == nil {
		t.Fatal("a commit under an expired lease succeeded")
	} else {
		wantErr(t, "commit under an expired lease", err, rotator.ErrLeaseLost)
	}
	nb, ok, err := s.Claim(ctx, "rot-1", "b", time.Hour)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	before := get(t, s, "rot-1")
	err = commit(stale, rotator.PhaseStaging)
	wantErr(t, "commit by the stale holder", err, rotator.ErrLeaseLost)
	wantErr(t, "commit by the stale holder", err, rotator.ErrConflict)
	after := get(t, s, "rot-1")
	if after.Version != before.Version || after.Phase != rotator.PhaseMinting {
		t.Fatalf("a fenced commit changed the rotation: version %d→%d, phase %s", before.Version, after.Version, after.Phase)
	}
	evs, err := s.Audit(ctx, rotator.AuditFilter{RotationID: "rot-1"})
	if err != nil {
		t.Fatal(err)
	}
	if n := countActions(evs, "step"); n != 1 {
		t.Fatalf("audit has %d step events, want only the first holder's", n)
	}
	r = after
	if err := commit(nb, rotator.PhaseStaging); err != nil {
		t.Fatalf("commit by the new holder: %v", err)
	}
	verifyClean(t, s)
}

func countActions(evs []rotator.AuditEvent, action string) int {
	n := 0
	for _, e := range evs {
		if e.Action == action {
			n++
		}
	}
	return n
}

// concurrentLease races 20 owners for one free lease: exactly one wins.
func concurrentLease(t *testing.T, a, b rotator.Store) {
	create(t, a, newRotation("rot-1", "k"))
	const n = 20
	won := make([]bool, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			<-start
			_, ok, err := s.Claim(ctxFor(t), "rot-1", name("daemon", i), time.Minute)
			if err != nil {
				t.Errorf("lease: %v", err)
			}
			won[i] = ok
		})
	}
	close(start)
	wg.Wait()
	if winners := len(slices.DeleteFunc(won, func(w bool) bool { return !w })); winners != 1 {
		t.Fatalf("%d owners hold the lease, want 1", winners)
	}
}

// testMembers: the cluster view tells alive, gone and stopped members apart
// by the database's clock and lists the rotations each holds.
func testMembers(t *testing.T, s rotator.Store) {
	ms, ok := s.(rotator.Membership)
	if !ok {
		t.Fatal("the store has no cluster membership")
	}
	ctx := ctxFor(t)
	create(t, s, newRotation("rot-1", "k"))
	for _, m := range []struct {
		id  string
		ttl time.Duration
	}{{"host-a/1", time.Hour}, {"host-b/2", -time.Second}, {"host-c/3", time.Hour}} {
		if err := ms.Heartbeat(ctx, rotator.Member{ID: m.id, Host: m.id[:6], PID: 7, Version: "v1"}, m.ttl); err != nil {
			t.Fatal(err)
		}
	}
	if err := ms.Heartbeat(ctx, rotator.Member{ID: "host-a/1", Host: "host-a", PID: 7, Version: "v2"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := ms.Leave(ctx, "host-c/3"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Claim(ctx, "rot-1", "host-a/1", time.Hour); err != nil || !ok {
		t.Fatal(ok, err)
	}
	list, err := ms.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]rotator.Member{}
	for _, m := range list {
		got[m.ID] = m
	}
	if len(list) != 3 || list[0].ID != "host-a/1" {
		t.Fatalf("members = %+v, want 3 with the alive one first", list)
	}
	a := got["host-a/1"]
	if rotator.MemberState(a) != "alive" || a.Version != "v2" || len(a.Holds) != 1 || a.Holds[0].ID != "rot-1" || a.HeartbeatAt.IsZero() || a.StartedAt.After(a.HeartbeatAt) {
		t.Errorf("alive member = %+v", a)
	}
	if st := rotator.MemberState(got["host-b/2"]); st != "gone" {
		t.Errorf("member past its TTL is %s, want gone", st)
	}
	if st := rotator.MemberState(got["host-c/3"]); st != "left" {
		t.Errorf("member that left is %s, want left", st)
	}
	// The database's clock, not the test's: the heartbeat is "now" there.
	if d := time.Since(a.HeartbeatAt); d < -time.Minute || d > time.Minute {
		t.Errorf("heartbeat at %s, %s from this host's now", a.HeartbeatAt, d)
	}
}

// testCreateBasedOn: a rotation built on the key's current credential as
// read is refused (ErrConflict, nothing written) once another rotation made
// a later generation current — as when it finished on another daemon
// between the read and the insert.
func testCreateBasedOn(t *testing.T, s rotator.Store) {
	ctx := ctxFor(t)
	if err := s.Save(ctx, rotator.Commit{Credentials: []*rotator.Credential{cred("k", 1, rotator.CredCurrent)}}); err != nil {
		t.Fatal(err)
	}
	stale := 0
	err := s.CreateRotation(ctx, rotator.Commit{Rotation: newRotation("rot-stale", "k"), BasedOn: &stale})
	wantErr(t, "create on a stale current credential", err, rotator.ErrConflict)
	if _, err := s.GetRotation(ctx, "rot-stale"); !errors.Is(err, rotator.ErrNotFound) {
		t.Fatalf("the refused rotation was written: %v", err)
	}
	fresh := 1
	if err := s.CreateRotation(ctx, rotator.Commit{Rotation: newRotation("rot-fresh", "k"), BasedOn: &fresh}); err != nil {
		t.Fatalf("create on the current credential: %v", err)
	}
}
