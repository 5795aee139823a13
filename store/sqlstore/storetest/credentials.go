package storetest

import (
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

func cred(key string, gen int, state rotator.CredentialState) *rotator.Credential {
	return &rotator.Credential{Key: key, Generation: gen, Name: key + "-v" + string(rune('0'+gen)),
		IssuerID: key + "-id-" + string(rune('0'+gen)), Fingerprint: rotator.Fingerprint(key + string(rune('0'+gen))),
		State: state, RotationID: "rot-" + key, CreatedAt: base.Add(time.Duration(gen) * time.Hour)}
}

func testCredentialsUpsert(t *testing.T, s rotator.Store) {
	ctx := ctxFor(t)
	create(t, s, newRotation("rot-k", "k"))
	// The mint intent: no issuer id, no fingerprint yet.
	intent := &rotator.Credential{Key: "k", Generation: 2, Name: "k-v2", State: rotator.CredPending, RotationID: "rot-k", CreatedAt: base}
	save(t, s, rotator.Commit{Credentials: []*rotator.Credential{cred("k", 1, rotator.CredCurrent), intent}})
	if found, err := s.CredentialByFingerprint(ctx, ""); err != nil || len(found) != 0 {
		t.Errorf("an empty fingerprint matched %v (%v)", found, err)
	}
	// The mint recorded, then the cut-over: same rows, new values.
	minted := cred("k", 2, rotator.CredCurrent)
	previous := cred("k", 1, rotator.CredPrevious)
	revoked := cred("k", 1, rotator.CredRevoked)
	revoked.RevokedAt = base.Add(48 * time.Hour)
	save(t, s, rotator.Commit{Credentials: []*rotator.Credential{minted, previous}})
	save(t, s, rotator.Commit{Credentials: []*rotator.Credential{revoked}})
	got, err := s.Credentials(ctx, "k")
	if err != nil {
		t.Fatalf("credentials: %v", err)
	}
	if want := []*rotator.Credential{revoked, minted}; !reflect.DeepEqual(got, want) {
		t.Fatalf("credentials = %s, want %s", show(got), show(want))
	}
	found, err := s.CredentialByFingerprint(ctx, minted.Fingerprint)
	if err != nil {
		t.Fatalf("by fingerprint: %v", err)
	}
	if want := []*rotator.Credential{minted}; !reflect.DeepEqual(found, want) {
		t.Fatalf("by fingerprint = %s, want %s", show(found), show(want))
	}
	if found, _ := s.CredentialByFingerprint(ctx, rotator.Fingerprint("unknown")); len(found) != 0 {
		t.Errorf("an unknown fingerprint matched %s", show(found))
	}
}

func show(cs []*rotator.Credential) string {
	out := "["
	for _, c := range cs {
		out += "\n  " + c.Name + " " + string(c.State) + " " + c.IssuerID + " " + rotator.ShortFingerprint(c.Fingerprint) +
			" created " + c.CreatedAt.String() + " revoked " + c.RevokedAt.String()
	}
	return out + "]"
}

func testKeyStates(t *testing.T, s rotator.Store) {
	// alpha: mid-rotation (v1 previous, v2 current, rotation active);
	// bravo: at rest; charlie: bootstrapping (no credential yet);
	// delta: decommissioned (revoked, rotation done): nothing current, left out.
	alphaRot, charlieRot, deltaRot := newRotation("rot-alpha", "alpha"), newRotation("rot-charlie", "charlie"), newRotation("rot-delta", "delta")
	deltaRot.Phase = rotator.PhaseDone
	create(t, s, alphaRot, cred("alpha", 1, rotator.CredPrevious), cred("alpha", 2, rotator.CredCurrent))
	create(t, s, charlieRot)
	create(t, s, deltaRot, cred("delta", 1, rotator.CredRevoked))
	save(t, s, rotator.Commit{Credentials: []*rotator.Credential{cred("bravo", 1, rotator.CredCurrent)}})

	got, err := s.KeyStates(ctxFor(t))
	if err != nil {
		t.Fatalf("key states: %v", err)
	}
	want := map[string]rotator.KeyState{
		"alpha":   {Key: "alpha", Current: cred("alpha", 2, rotator.CredCurrent), Active: alphaRot},
		"bravo":   {Key: "bravo", Current: cred("bravo", 1, rotator.CredCurrent)},
		"charlie": {Key: "charlie", Active: charlieRot},
	}
	if keys := slices.Sorted(maps.Keys(got)); !slices.Equal(keys, slices.Sorted(maps.Keys(want))) {
		t.Fatalf("keys = %v, want %v", keys, slices.Sorted(maps.Keys(want)))
	}
	for key, w := range want {
		g := got[key]
		if g.Key != key {
			t.Errorf("%s: Key = %q", key, g.Key)
		}
		if !reflect.DeepEqual(g.Current, w.Current) {
			t.Errorf("%s: current = %+v, want %+v", key, g.Current, w.Current)
		}
		switch {
		case (g.Active == nil) != (w.Active == nil):
			t.Errorf("%s: active = %+v, want %+v", key, g.Active, w.Active)
		case g.Active != nil:
			sameRotation(t, g.Active, w.Active)
		}
	}
}

func testApprovals(t *testing.T, s rotator.Store) {
	ctx := ctxFor(t)
	create(t, s, newRotation("rot-1", "k"))
	approval := func(gate rotator.Gate, who string, v rotator.Verdict, minute int) rotator.Approval {
		return rotator.Approval{RotationID: "rot-1", Gate: gate, Approver: who, Verdict: v, Via: "slack",
			Comment: "ok by me", At: base.Add(time.Duration(minute) * time.Minute)}
	}
	ev := func(a rotator.Approval) rotator.AuditEvent {
		e := event("rot-1", "k", "approval."+string(a.Verdict))
		e.Actor = a.Approver
		return e
	}
	steps := []struct {
		approval rotator.Approval
		want     error
	}{
		{approval(rotator.GateStart, "alice", rotator.VerdictApprove, 1), nil},
		{approval(rotator.GateStart, "bob", rotator.VerdictDeny, 2), nil},
		{approval(rotator.GateRevoke, "alice", rotator.VerdictApprove, 3), nil},
		{approval(rotator.GateStart, "alice", rotator.VerdictDeny, 4), rotator.ErrDecided}, // changes her mind: refused
		{rotator.Approval{RotationID: "nope", Gate: rotator.GateStart, Approver: "alice", Verdict: rotator.VerdictApprove, At: base}, rotator.ErrNotFound},
	}
	// The engine records a drain-timeout decision's event with the rotation
	// commit and passes no event here: none must be appended.
	quiet := approval(rotator.GateDrain, "carol", rotator.VerdictApprove, 5)
	var accepted []rotator.Approval
	for _, st := range steps {
		err := addApproval(ctx, s, st.approval, ev(st.approval))
		if st.want == nil {
			if err != nil {
				t.Fatalf("approval %+v: %v", st.approval, err)
			}
			accepted = append(accepted, st.approval)
			continue
		}
		wantErr(t, "approval by "+st.approval.Approver, err, st.want)
	}
	if err := addApproval(ctx, s, quiet, rotator.AuditEvent{}); err != nil {
		t.Fatalf("approval without event: %v", err)
	}
	accepted = append(accepted, quiet)
	got, err := s.Approvals(ctx, "rot-1")
	if err != nil {
		t.Fatalf("approvals: %v", err)
	}
	if !reflect.DeepEqual(got, accepted) {
		t.Fatalf("approvals = %+v\nwant %+v", got, accepted)
	}
	// One audit event for the start, one per accepted decision that came
	// with one, none for the refused ones.
	evs, err := s.Audit(ctx, rotator.AuditFilter{RotationID: "rot-1"})
	if err != nil {
		t.Fatalf("audit: %v", err)
	}
	if want := len(accepted); len(evs) != want {
		t.Errorf("%d audit events, want %d", len(evs), want)
	}
	verifyClean(t, s)
}

func testAdapterState(t *testing.T, s rotator.Store) {
	st, ok := s.(rotator.StateStore)
	if !ok {
		t.Fatalf("%T is not a rotator.StateStore", s)
	}
	ctx := ctxFor(t)
	if _, found, err := st.GetState(ctx, "slack-ops", "rot-1"); err != nil || found {
		t.Fatalf("empty state: found %v, %v", found, err)
	}
	steps := []struct{ ns, key, value string }{
		{"slack-ops", "rot-1", "1712345678.000100"},
		{"slack-sec", "rot-1", "other adapter, same key"},
		{"slack-ops", "rot-1", "1712345999.000200"}, // replaced
	}
	for _, p := range steps {
		if err := st.PutState(ctx, p.ns, p.key, p.value); err != nil {
			t.Fatalf("put %s/%s: %v", p.ns, p.key, err)
		}
	}
	want := map[string]string{"slack-ops": "1712345999.000200", "slack-sec": "other adapter, same key"}
	for ns, value := range want {
		got, found, err := st.GetState(ctx, ns, "rot-1")
		if err != nil || !found || got != value {
			t.Errorf("%s/rot-1 = %q, %v, %v; want %q", ns, got, found, err, value)
		}
	}
	del, ok := s.(rotator.StateDeleter)
	if !ok {
		t.Fatalf("%T is not a rotator.StateDeleter", s)
	}
	if err := del.DeleteState(ctx, "slack-ops", "rot-1"); err != nil {
		t.Fatal(err)
	}
	if err := del.DeleteState(ctx, "slack-ops", "rot-1"); err != nil {
		t.Fatalf("deleting a missing entry: %v", err)
	}
	if _, found, err := st.GetState(ctx, "slack-ops", "rot-1"); err != nil || found {
		t.Errorf("slack-ops/rot-1 after delete: found %v, %v", found, err)
	}
	if _, found, err := st.GetState(ctx, "slack-sec", "rot-1"); err != nil || !found {
		t.Errorf("slack-sec/rot-1 gone with another namespace's entry: found %v, %v", found, err)
	}
}

// testWorkingCredentials: a rotation reads the live credentials of its
// key, the generations it names and the highest one — not the history —
// and one commit may carry the same generation twice (the intent, then the
// minted credential): the last one is stored.
func testWorkingCredentials(t *testing.T, s rotator.Store) {
	ctx := ctxFor(t)
	w, ok := s.(rotator.WorkingSetStore)
	if !ok {
		t.Fatalf("%T does not implement rotator.WorkingSetStore", s)
	}
	create(t, s, newRotation("rot-k", "k"))
	var all []*rotator.Credential
	for gen, state := range map[int]rotator.CredentialState{1: rotator.CredRevoked, 2: rotator.CredRevoked, 3: rotator.CredRevoked,
		4: rotator.CredPrevious, 5: rotator.CredCurrent} {
		all = append(all, cred("k", gen, state), cred("other", gen, rotator.CredRevoked))
	}
	intent := &rotator.Credential{Key: "k", Generation: 6, Name: "k-v6", State: rotator.CredPending, RotationID: "rot-k", CreatedAt: base}
	minted := cred("k", 6, rotator.CredPending)
	save(t, s, rotator.Commit{Credentials: append(all, intent, minted)})
	gens := func(cs []*rotator.Credential) []int {
		var out []int
		for _, c := range cs {
			out = append(out, c.Generation)
		}
		return out
	}
	tests := map[string]struct {
		key  string
		ask  []int
		want []int
	}{
		"live and asked":     {key: "k", ask: []int{2, 0, 0}, want: []int{2, 4, 5, 6}},
		"live only":          {key: "k", want: []int{4, 5, 6}},
		"all revoked: last":  {key: "other", want: []int{5}},
		"all revoked, asked": {key: "other", ask: []int{1, 3}, want: []int{1, 3, 5}},
		"unknown key":        {key: "nope", ask: []int{1}, want: nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := w.WorkingCredentials(ctx, tc.key, tc.ask...)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(gens(got), tc.want) {
				t.Fatalf("generations %v, want %v", gens(got), tc.want)
			}
		})
	}
	got, err := w.WorkingCredentials(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if last := got[len(got)-1]; !reflect.DeepEqual(last, minted) {
		t.Fatalf("generation 6 = %s, want the minted one %s", show([]*rotator.Credential{last}), show([]*rotator.Credential{minted}))
	}
}
