package rotator_test

import (
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

type warnSoon struct{}

func (warnSoon) Name() string { return "warn-soon" }
func (warnSoon) Evaluate(in rotator.PolicyInput) rotator.Decision {
	if in.Current == nil {
		return rotator.Decision{Action: rotator.ActionNone}
	}
	return rotator.Decision{Action: rotator.ActionWarn, Reason: "soon", Detail: "due in a week", Due: in.Now.Add(7 * 24 * time.Hour)}
}

// A key's age warning goes out once per generation, also across a
// restart; on the code before, every restart sent it again.
func TestAgeWarningOncePerGenerationAcrossRestarts(t *testing.T) {
	e := newEnv(t)
	e.key.Policies = []rotator.Policy{warnSoon{}}
	e.engine = e.newEngine(nil)
	e.bootstrap()
	warnings := func() int {
		n := 0
		for _, k := range e.notes.kinds() {
			if k == rotator.EventWarnAge {
				n++
			}
		}
		return n
	}
	for range 3 {
		if err := e.engine.Evaluate(e.ctx); err != nil {
			t.Fatal(err)
		}
	}
	e.engine.Close(5 * time.Second) // delivers what is queued
	if n := warnings(); n != 1 {
		t.Fatalf("%d warnings from one engine, want 1", n)
	}
	restarted := e.newEngine(nil)
	if err := restarted.Evaluate(e.ctx); err != nil {
		t.Fatal(err)
	}
	restarted.Close(5 * time.Second)
	if n := warnings(); n != 1 {
		t.Fatalf("%d warnings after a restart, want still 1", n)
	}
}
