package e2e

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Invariants 1, 2 and 4 with the real binary: SIGKILL at every phase
// boundary of a staged rotation (the engine's failpoints kill the process
// right after a phase's intent is persisted and right after its side
// effect, before its record), then a restart. Every run must reach the end
// state of an uninterrupted run: the rotation done, exactly one live
// credential at the issuer, that one current in the sink with nothing
// pending or previous, every other generation revoked, the audit intact.
func TestCrashAtEveryPhaseBoundary(t *testing.T) {
	t.Parallel()
	points := []string{
		"minting:before", "minting:after",
		"staging:before", "staging:after",
		"verifying:before",
		"cutting_over:before", "cutting_over:after",
		"revoking:before", "revoking:after",
		"cleaning:before",
		"", // uninterrupted, for comparison
	}
	for _, fp := range points {
		name := fp
		if name == "" {
			name = "uninterrupted"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, params{Quiet: "200ms", Watch: "200ms"})
			d := w.start()
			w.bootstrap("api")
			d.stop()
			var env []string
			if fp != "" {
				env = append(env, "REKEY_FAILPOINT="+fp)
			}
			d = w.start(env...)
			out, code := w.cliStdout("", "rotate", "api", "--reason", "crash test", "-o", "json")
			if code != 0 {
				t.Fatalf("rotate: exit %d: %s", code, out)
			}
			var r rotationView
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatal(err)
			}
			if fp != "" {
				if !d.waitKilled(t, 20*time.Second) {
					t.Fatalf("the daemon was not killed at %s", fp)
				}
				if !strings.Contains(readFile(t, d.log), `"failpoint":"`+fp+`"`) {
					t.Fatalf("killed, but not at the failpoint %s", fp)
				}
				w.collectSecrets()
				d = w.start()
			}
			got := w.waitRotation(r.ID, 30*time.Second)
			d.stop()
			w.checkEndState(got)
			w.scanForSecrets()
		})
	}
}

// A kill -9 from outside while the drain gate waits: the restarted daemon
// resumes the gate (it does not revoke early) and completes.
func TestKillDuringDrain(t *testing.T) {
	t.Parallel()
	w := newWorld(t, params{Quiet: "3s", Watch: "0s"})
	d := w.start()
	w.bootstrap("api")
	var r rotationView
	if code := w.api("POST", "/v1/keys/api/rotate", map[string]string{}, &r); code != 201 {
		t.Fatalf("rotate: %d", code)
	}
	deadline := patient(20 * time.Second)
	for {
		var got struct {
			Rotation rotationView `json:"rotation"`
		}
		w.api("GET", "/v1/rotations/"+r.ID, nil, &got)
		if got.Rotation.Phase == "draining" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never reached draining: %+v", got.Rotation)
		}
		time.Sleep(20 * time.Millisecond)
	}
	w.collectSecrets()
	if err := syscall.Kill(d.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-d.done
	// Old key still live, new key current in the sink.
	doc := w.sink("api")
	if doc.Current == nil || doc.Current.Generation != 2 || doc.Previous == nil || doc.Previous.Generation != 1 {
		t.Fatalf("sink while draining: %+v", doc)
	}
	for _, c := range w.ledger() {
		if c.Name == "api-v1" && c.RevokedAt != "" {
			t.Fatal("old credential revoked before the drain gate passed")
		}
	}
	d = w.start()
	got := w.waitRotation(r.ID, 30*time.Second)
	d.stop()
	w.checkEndState(got)
	w.scanForSecrets()
}

func (w *world) checkEndState(r rotationView) {
	w.t.Helper()
	if r.Phase != "done" {
		w.t.Fatalf("rotation ended %s: %s %s", r.Phase, r.Outcome, r.LastError)
	}
	w.collectSecrets()
	doc := w.sink("api")
	if doc.Current == nil || doc.Pending != nil || doc.Previous != nil {
		w.t.Fatalf("sink end state: %+v", doc)
	}
	live := 0
	for _, c := range w.ledger() {
		if c.RevokedAt == "" {
			live++
			if c.Fingerprint != doc.Current.Fingerprint {
				w.t.Fatalf("orphan: %s is live at the issuer but not delivered", c.Name)
			}
		}
	}
	if live != 1 {
		w.t.Fatalf("%d live credentials at the issuer, want exactly 1", live)
	}
	if out, code := w.cli("", "audit", "verify"); code != 0 {
		w.t.Fatalf("audit verify: exit %d: %s", code, out)
	}
}
