package rotator_test

import (
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// twoSources is a gate of two sources as the tryout had it: attested
// (consumer attestations: old-key use) and kam (the API's counters: both
// questions, asked here for failures).
func twoSources(attested, kam *askedSource) envOpt {
	return func(e *env) {
		e.key.Drain.Sources = []rotator.GateSource{
			{Name: "attested", Type: "consumers", Answers: []rotator.Question{rotator.OldKeyUse}},
			{Name: "kam", Type: "kubeadapt", Answers: []rotator.Question{rotator.OldKeyUse, rotator.NewKeyFailures}},
		}
		e.key.Drain.Checks = []rotator.DrainCheck{
			{Question: rotator.OldKeyUse, Source: attested, SourceName: "attested"},
			{Question: rotator.NewKeyFailures, Source: kam, SourceName: "kam"},
		}
		e.key.Drain.QuietPeriod = 3 * time.Minute
	}
}

func (e *env) pollOnce(id string) *rotator.Rotation {
	e.t.Helper()
	r, _ := e.store.GetRotation(e.ctx, id)
	e.clock.Set(r.NextAttemptAt)
	e.engine.RunOnce(e.ctx)
	r, _ = e.store.GetRotation(e.ctx, id)
	if r.Waiting == nil {
		e.t.Fatalf("%s: no waiting state", r.Phase)
	}
	return r
}

// The drain gate's waiting line says which question is not yet zero and
// from which source: a consumer behind is old-key use, not "401 traffic";
// failures are named as the new key failing, on their own source; the
// quiet line names what each source found quiet. Before, every non-zero
// reading read "source <first source> still reports 401 traffic (rate N)",
// and the drain-timeout hold said `last error ""`.
func TestDrainWaitingSaysWhichQuestion(t *testing.T) {
	attested := &askedSource{values: map[rotator.Question]float64{rotator.OldKeyUse: 1}}
	kam := &askedSource{values: map[rotator.Question]float64{}}
	e := newEnv(t, twoSources(attested, kam))
	e.bootstrap()
	r := e.trigger(rotator.TriggerManual, "")
	for r.Phase != rotator.PhaseDraining || r.Drain.Polls == 0 {
		r = e.run(r.ID, 1)
	}
	detail := func(r *rotator.Rotation, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(r.Waiting.Detail, w) {
				t.Errorf("waiting %q\nlacks %q", r.Waiting.Detail, w)
			}
		}
	}
	r = e.pollOnce(r.ID)
	detail(r, "the old key is still used: 1 consumer(s) behind (source attested)")
	if strings.Contains(r.Waiting.Detail, "401") || strings.Contains(r.Waiting.Detail, "kam") {
		t.Errorf("a consumer behind reads as %q", r.Waiting.Detail)
	}
	attested.set(rotator.OldKeyUse, 0)
	kam.set(rotator.NewKeyFailures, 4)
	r = e.pollOnce(r.ID)
	detail(r, "new key failing: 4 401/s", "(source kam)")
	if strings.Contains(r.Waiting.Detail, "attested") {
		t.Errorf("failures on kam read as %q", r.Waiting.Detail)
	}
	kam.set(rotator.NewKeyFailures, 0)
	r = e.pollOnce(r.ID)
	detail(r, "quiet for", "of 3m0s: no old-key use on attested, no failures on kam")

	// Past max_wait with a consumer behind: the hold says so, with no
	// empty "last error".
	attested.set(rotator.OldKeyUse, 2)
	e.clock.Advance(2 * time.Hour)
	r = e.run(r.ID, 5)
	if r.Hold != rotator.HoldDrainTimeout {
		t.Fatalf("hold %s, want drain timeout", r.Hold)
	}
	if !strings.Contains(r.HoldDetail, "the old key is still used: 2 consumer(s) behind (source attested)") || strings.Contains(r.HoldDetail, `last error ""`) {
		t.Errorf("drain-timeout hold: %s", r.HoldDetail)
	}
}

// The watch of a gate that observes nothing (fixed) does not claim to
// watch for 401s; a gate that asks says what it looks for, and where.
func TestWatchWaitingSaysWhatItLooksFor(t *testing.T) {
	for name, tc := range map[string]struct {
		opt        envOpt
		want, lack string
	}{
		"fixed": {opt: func(e *env) {
			e.key.Drain.Sources = []rotator.GateSource{{Name: "fixed", Type: "fixed"}}
			e.key.Drain.Checks = []rotator.DrainCheck{{SourceName: "fixed", Source: &askedSource{values: map[rotator.Question]float64{}}}}
		}, want: "source fixed observes nothing", lack: "401"},
		"two sources": {opt: twoSources(&askedSource{values: map[rotator.Question]float64{}}, &askedSource{values: map[rotator.Question]float64{}}),
			want: "use of the revoked key on attested, 401s with the new or an unidentifiable key on kam"},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, tc.opt)
			e.bootstrap()
			r := e.trigger(rotator.TriggerManual, "")
			for r.Phase != rotator.PhaseWatching || r.Waiting == nil {
				if r = e.run(r.ID, 1); r.Phase.Terminal() {
					t.Fatalf("ended %s before the watch", r.Phase)
				}
			}
			if !strings.Contains(r.Waiting.Detail, tc.want) || tc.lack != "" && strings.Contains(r.Waiting.Detail, tc.lack) {
				t.Errorf("watch waiting %q, want %q without %q", r.Waiting.Detail, tc.want, tc.lack)
			}
		})
	}
}
