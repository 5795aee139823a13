package rotator_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rekeyhq/rekey/rotator"
)

// TestTakeoverFencesStaleCredentialWrites: daemon A is inside the last
// sink's cut-over when it is cut off; its lease runs out, daemon B takes
// the rotation over and commits (the version moves on, and B rewrites the
// key's credentials, as after reaping A's orphan and minting again). A's
// heartbeat has not noticed yet (its TTL is long). When A's call returns,
// its commit is a version conflict that is also fenced: A must write no
// credential (B's rows stay B's), and must give the lease up at once (its
// holder marked lost, as the heartbeat would later) — not read B's state
// and run the step again, a side effect no commit fences first.
func TestTakeoverFencesStaleCredentialWrites(t *testing.T) {
	e := newEnv(t)
	e.bootstrap()
	gate := newGatedSink(e.sinks[1], "promote")
	e.key.Sinks[1].Sink = gate
	reg := prometheus.NewRegistry()
	a := e.daemon("daemon-a", time.Hour, reg) // the heartbeat notices nothing during the test
	r := e.trigger(rotator.TriggerManual, "")
	done := e.runUntilGate(a, r.ID, gate, "cut-over of the last sink")
	// A's lease runs out; B claims the rotation and commits.
	if _, err := e.store.DB().ExecContext(t.Context(), `UPDATE rotations SET lease_until = '' WHERE id = ?`, r.ID); err != nil {
		t.Fatal(err)
	}
	lb, ok, err := e.store.Claim(t.Context(), r.ID, "daemon-b", time.Hour)
	if err != nil || !ok {
		t.Fatalf("B's claim = %v, %v", ok, err)
	}
	rb, err := e.store.GetRotation(t.Context(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	var bs []*rotator.Credential
	for _, c := range e.creds() {
		c.IssuerID += "-by-b"
		bs = append(bs, c)
	}
	if err := e.store.Save(t.Context(), rotator.Commit{Rotation: rb, Credentials: bs, Lease: &lb}); err != nil {
		t.Fatalf("B's commit: %v", err)
	}
	want := e.creds()
	close(gate.open)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("A did not stop")
	}
	for gen, c := range e.creds() {
		if w := want[gen]; w == nil || w.IssuerID != c.IssuerID || w.State != c.State {
			t.Errorf("generation %d is %s (%s) after A's late commit, want B's %v", gen, c.IssuerID, c.State, w)
		}
	}
	if n := gate.calls.Load(); n != 1 {
		t.Errorf("A called Promote %d times: after its fenced commit it went on with B's state", n)
	}
	if v := metricValue(reg, "rekey_lease_lost_total"); v != 1 {
		t.Errorf("rekey_lease_lost_total = %v, want 1 (the fenced commit marks the lease lost)", v)
	}
	after, err := e.store.GetRotation(t.Context(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.Version != rb.Version {
		t.Errorf("rotation version %d after A, want B's %d", after.Version, rb.Version)
	}
}
