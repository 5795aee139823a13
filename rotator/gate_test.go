package rotator_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

func TestProveGate(t *testing.T) {
	both := []rotator.Question{rotator.OldKeyUse, rotator.NewKeyFailures}
	prom := rotator.GateSource{Name: "prom", Type: "prometheus", Answers: []rotator.Question{rotator.NewKeyFailures}}
	tests := map[string]struct {
		spec        rotator.GateSpec
		quiet       time.Duration
		proves      []string
		warning     string // substring; "" = none
		blindOldKey bool
	}{
		"both questions": {
			spec:   rotator.GateSpec{Key: "api", Sources: []rotator.GateSource{{Name: "ka", Answers: both}}, Require: both, QuietPeriod: time.Minute, MaxWait: time.Hour},
			quiet:  time.Minute,
			proves: []string{"nobody used the old key (ka)", "new or an unidentifiable key (ka)", "safe for consumers that reload at any speed", "never reloads holds it until max_wait 1h"},
		},
		"401 rate only, no reload interval": {
			spec:        rotator.GateSpec{Key: "api", Sources: []rotator.GateSource{prom}, Require: []rotator.Question{rotator.NewKeyFailures}, QuietPeriod: 30 * time.Second},
			quiet:       30 * time.Second,
			proves:      []string{"sees only failed authentication (prom)", "consumers that reload slower than 30s will get 401s"},
			warning:     "api: the drain gate cannot see old-key use; consumers that reload slower than 30s will get 401s",
			blindOldKey: true,
		},
		"401 rate only, reload interval declared": {
			spec:        rotator.GateSpec{Key: "api", Sources: []rotator.GateSource{prom}, Require: []rotator.Question{rotator.NewKeyFailures}, QuietPeriod: 30 * time.Second, ReloadWithin: 15 * time.Minute},
			quiet:       15 * time.Minute,
			proves:      []string{"after 15m of no 401s", "consumers that reload within 15m (drain.consumers_reload_within) are safe"},
			blindOldKey: true,
		},
		"fixed": {
			spec:        rotator.GateSpec{Key: "demo", Sources: []rotator.GateSource{{Name: "fixed"}}, QuietPeriod: 30 * time.Second},
			quiet:       30 * time.Second,
			proves:      []string{"observes nothing (fixed): it waits 30s and revokes"},
			warning:     "demo: the drain gate cannot see old-key use; consumers that reload slower than 30s will get 401s",
			blindOldKey: true,
		},
		"old-key use only (attestations)": {
			spec:   rotator.GateSpec{Key: "api", Sources: []rotator.GateSource{{Name: "attested", Answers: []rotator.Question{rotator.OldKeyUse}}}, Require: []rotator.Question{rotator.OldKeyUse}, QuietPeriod: time.Minute, ReloadWithin: time.Hour},
			quiet:  time.Minute, // the declared reload does not matter when old-key use is seen
			proves: []string{"nobody used the old key (attested)", "does not see failures with the new key"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := rotator.ProveGate(tc.spec)
			if p.Quiet != tc.quiet || tc.spec.EffectiveQuiet() != tc.quiet {
				t.Errorf("quiet %s, want %s", p.Quiet, tc.quiet)
			}
			for _, s := range tc.proves {
				if !strings.Contains(p.Proves, s) {
					t.Errorf("proves %q\nlacks %q", p.Proves, s)
				}
			}
			if (tc.warning == "") != (p.Warning == "") || !strings.Contains(p.Warning, tc.warning) {
				t.Errorf("warning %q, want %q", p.Warning, tc.warning)
			}
			blind := false
			for _, q := range p.Blind {
				blind = blind || q == rotator.OldKeyUse
			}
			if blind != tc.blindOldKey {
				t.Errorf("blind %v", p.Blind)
			}
		})
	}
}

// askedSource answers each question with its own value and records the
// queries it was asked.
type askedSource struct {
	mu      sync.Mutex
	values  map[rotator.Question]float64
	queries []rotator.TrafficQuery
	query   string // Reading.Query it reports
}

func (s *askedSource) set(q rotator.Question, v float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.values[q] = v
}

func (s *askedSource) Unauthorized(_ context.Context, q rotator.TrafficQuery) (rotator.Reading, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queries = append(s.queries, q)
	return rotator.Reading{Value: s.values[q.Question], Query: s.query}, nil
}

func (s *askedSource) asked() []rotator.TrafficQuery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]rotator.TrafficQuery(nil), s.queries...)
}

func withChecks(src *askedSource, qs ...rotator.Question) envOpt {
	return func(e *env) {
		for _, q := range qs {
			e.key.Drain.Checks = append(e.key.Drain.Checks, rotator.DrainCheck{Question: q, Source: src, SourceName: "asked", Query: "q-" + string(q)})
		}
	}
}

// The gate asks each question with its own query, and passes only once
// every answer was zero for the quiet period: a consumer still on the old
// key (no 401s anywhere) holds it.
func TestDrainAsksBothQuestions(t *testing.T) {
	src := &askedSource{values: map[rotator.Question]float64{rotator.OldKeyUse: 2}}
	e := newEnv(t, withChecks(src, rotator.OldKeyUse, rotator.NewKeyFailures))
	e.bootstrap()
	old := e.creds()[1]
	r := e.trigger(rotator.TriggerManual, "")
	e.clock.Advance(30 * time.Minute)
	r = e.run(r.ID, 40)
	if r.Phase != rotator.PhaseDraining || e.iss.isRevoked(old.IssuerID) {
		t.Fatalf("the old key is still used, yet phase %s, revoked %v", r.Phase, e.iss.isRevoked(old.IssuerID))
	}
	if r.Drain.LastValues["old_key_use via asked"] != 2 || r.Drain.LastValues["new_key_failures via asked"] != 0 {
		t.Fatalf("last values %v", r.Drain.LastValues)
	}
	seen := map[rotator.Question]string{}
	for _, q := range src.asked() {
		seen[q.Question] = q.Query
		if q.NewGeneration != 2 || q.OldGeneration != 1 {
			t.Fatalf("query without generations: %+v", q)
		}
	}
	if seen[rotator.OldKeyUse] != "q-old_key_use" || seen[rotator.NewKeyFailures] != "q-new_key_failures" {
		t.Fatalf("questions asked: %v", seen)
	}
	src.set(rotator.OldKeyUse, 0)
	r = e.run(r.ID, 100)
	if r.Phase != rotator.PhaseDone {
		t.Fatalf("phase %s: %s", r.Phase, r.LastError)
	}
	var started *rotator.Event
	e.notes.mu.Lock()
	for i := range e.notes.evs {
		if e.notes.evs[i].Kind == rotator.EventStarted && e.notes.evs[i].RotationID == r.ID {
			started = &e.notes.evs[i]
		}
	}
	e.notes.mu.Unlock()
	if started == nil || !strings.Contains(started.Fields["gate"], "safe for consumers that reload at any speed") || started.Fields["gate_warning"] != "" {
		t.Fatalf("the started notification does not say what the gate proves: %+v", started)
	}
}

// A gate that cannot see old-key use waits at least the declared reload
// interval of the slowest consumer, however quiet the 401 rate is.
func TestReloadWithinRaisesTheQuietPeriod(t *testing.T) {
	e := newEnv(t, func(e *env) { e.key.Drain.ReloadWithin = 15 * time.Minute })
	e.bootstrap()
	r := e.trigger(rotator.TriggerManual, "")
	r = e.run(r.ID, 100)
	if r.Phase != rotator.PhaseDone {
		t.Fatalf("phase %s: %s", r.Phase, r.LastError)
	}
	evs, err := e.store.Audit(e.ctx, rotator.AuditFilter{RotationID: r.ID})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Action == "drained" {
			if q, err := time.ParseDuration(ev.Detail["quiet_for"]); err != nil || q < 15*time.Minute {
				t.Fatalf("drained after %s of quiet, want at least the declared reload 15m", ev.Detail["quiet_for"])
			}
			return
		}
	}
	t.Fatal("no drained event")
}

// The post-revoke watch counts only traffic since the revoke (NotBefore),
// and its alert names the query actually run and what it counts.
func TestWatchAlertIsHonest(t *testing.T) {
	src := &askedSource{values: map[rotator.Question]float64{}, query: `sum(rate(x{key_id="k1"}[2s]))`}
	e := newEnv(t, withChecks(src, rotator.OldKeyUse))
	e.bootstrap()
	r := e.trigger(rotator.TriggerManual, "")
	for r.Phase != rotator.PhaseWatching {
		r = e.run(r.ID, 1)
		if r.Phase.Terminal() {
			t.Fatalf("ended %s before the watch", r.Phase)
		}
	}
	src.set(rotator.OldKeyUse, 0.5)
	r = e.run(r.ID, 100)
	var alert *rotator.Event
	e.notes.mu.Lock()
	for i := range e.notes.evs {
		if e.notes.evs[i].Kind == rotator.EventWatchAlert {
			alert = &e.notes.evs[i]
		}
	}
	e.notes.mu.Unlock()
	if alert == nil {
		t.Fatal("no watch alert")
	}
	if alert.Fields["query"] != src.query || alert.Fields["question"] != "old_key_use" || !strings.Contains(alert.Message, "requests made with the old key") ||
		!strings.Contains(alert.Message, src.query) || strings.Contains(alert.Message, `query ""`) {
		t.Fatalf("alert: %+v", alert)
	}
	var watched bool
	for _, q := range src.asked() {
		if !q.NotBefore.IsZero() {
			watched = true
			if q.NotBefore.Before(r.Drain.StartedAt) || !q.NotBefore.Equal(q.Since) {
				t.Fatalf("watch query counts from %s (since %s), before the revoke", q.NotBefore, q.Since)
			}
		}
	}
	if !watched {
		t.Fatal("no watch query carried NotBefore")
	}
}

// A built policy whose only source is fixed (declared to answer nothing)
// asks no question: describe and the rotation's notification say it
// observes nothing, the waiting text does not claim "no 401 traffic", and
// the drained event says only the quiet period was asked. Before, the
// fixed check counted as a 401-rate question answered by nobody ("sees
// only failed authentication ()").
func TestFixedSourceAsksNothing(t *testing.T) {
	p := rotator.DrainPolicy{
		Sources:     []rotator.GateSource{{Name: "fixed", Type: "fixed"}},
		Checks:      []rotator.DrainCheck{{SourceName: "fixed", Source: &askedSource{}}},
		QuietPeriod: 30 * time.Second,
	}
	if q := p.Require(); len(q) != 0 {
		t.Fatalf("the fixed gate asks %v", q)
	}
	if proof := rotator.ProveGate(p.Gate("demo")); !strings.Contains(proof.Proves, "observes nothing (fixed)") {
		t.Fatalf("proves %q", proof.Proves)
	}
	declared := p
	declared.Sources = []rotator.GateSource{{Name: "fixed", Type: "prometheus", Answers: []rotator.Question{rotator.NewKeyFailures}}}
	if q := declared.Require(); len(q) != 1 || q[0] != rotator.NewKeyFailures {
		t.Fatalf("a source that answers its own question asks %v", q)
	}
}
