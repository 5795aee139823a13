package rotator_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// A rotation driven by another engine on the same store — the break-glass
// CLI, another daemon sharing a PostgreSQL — is counted by the daemon whose
// metrics are scraped, which never ran a step of it: the counters are read
// from the store.
func TestCountersCountRotationsDrivenElsewhere(t *testing.T) {
	src := &askedSource{values: map[rotator.Question]float64{}}
	e := newEnv(t, withChecks(src, rotator.OldKeyUse))
	reg := e.withMetrics(rotator.MetricsOptions{PerKey: true})
	e.bootstrap()
	wantMetric(t, reg, "rekey_credentials_minted_total", map[string]string{"key": "api"}, 1)
	wantMetric(t, reg, "rekey_credentials_revoked_total", map[string]string{"key": "api"}, 0)
	wantMetric(t, reg, "rekey_rotations_total", map[string]string{"outcome": "done", "trigger": "bootstrap", "mode": "staged"}, 1)

	// The CLI's engine: metrics of its own, never scraped.
	e.engine = e.newEngine(nil)
	r := e.trigger(rotator.TriggerManual, "")
	for r.Phase != rotator.PhaseWatching {
		if r = e.run(r.ID, 1); r.Phase.Terminal() {
			t.Fatalf("ended %s before the watch", r.Phase)
		}
	}
	src.set(rotator.OldKeyUse, 0.5) // a caller still uses the revoked key
	if r = e.run(r.ID, 100); r.Phase != rotator.PhaseDone {
		t.Fatalf("phase %s: %s", r.Phase, r.LastError)
	}

	e.clock.Advance(3 * time.Second) // past the counters' cache
	wantMetric(t, reg, "rekey_credentials_minted_total", map[string]string{"key": "api"}, 2)
	wantMetric(t, reg, "rekey_credentials_revoked_total", map[string]string{"key": "api"}, 1)
	wantMetric(t, reg, "rekey_watch_alerts_total", map[string]string{"key": "api"}, 1)
	wantMetric(t, reg, "rekey_rotations_total", map[string]string{"outcome": "done", "trigger": "manual", "mode": "staged"}, 1)
	wantMetric(t, reg, "rekey_rotations_total", map[string]string{"outcome": "done", "trigger": "bootstrap", "mode": "staged"}, 1)
}

// Without the key label the counters sum every key in the store — keys
// another daemon manages too, so the sum never drops when a key leaves
// this daemon's configuration — and count an orphan of an interrupted mint
// revoked by whichever engine found it.
func TestCountersWithoutKeyLabel(t *testing.T) {
	e := newEnv(t)
	reg := e.withMetrics(rotator.MetricsOptions{PerKey: false})
	e.bootstrap()
	crash := e.newEngine(func(name string) {
		if name == "minting:after" {
			runtime.Goexit()
		}
	})
	r := e.trigger(rotator.TriggerManual, "")
	func() {
		defer func() { _ = recover() }()
		crash.RunOnce(e.ctx)
	}()
	if e.iss.liveCount() != 2 {
		t.Fatalf("expected an orphan at the issuer, live=%d", e.iss.liveCount())
	}
	e.clock.Advance(10 * time.Minute) // the crashed engine's lease expires
	e.engine = e.newEngine(nil)
	if r = e.run(r.ID, 100); r.Phase != rotator.PhaseDone {
		t.Fatalf("phase %s: %s", r.Phase, r.LastError)
	}
	at := e.clock.Now()
	if err := e.store.Save(e.ctx, rotator.Commit{Credentials: []*rotator.Credential{
		{Key: "legacy", Generation: 1, Name: "legacy-v1", IssuerID: "id-legacy-1", State: rotator.CredRevoked, CreatedAt: at, RevokedAt: at},
		{Key: "legacy", Generation: 2, Name: "legacy-v2", IssuerID: "id-legacy-2", State: rotator.CredCurrent, CreatedAt: at},
		{Key: "legacy", Generation: 3, Name: "legacy-v3", State: rotator.CredPending}, // an intent: not minted
	}}); err != nil {
		t.Fatal(err)
	}

	e.clock.Advance(3 * time.Second)
	// api: generations 1 and 2 (the orphan was never recorded as minted);
	// legacy: 1 and 2.
	wantMetric(t, reg, "rekey_credentials_minted_total", nil, 4)
	// api: generation 1 and the orphan; legacy: generation 1.
	wantMetric(t, reg, "rekey_credentials_revoked_total", nil, 3)
	wantMetric(t, reg, "rekey_watch_alerts_total", nil, 0)
	wantMetric(t, reg, "rekey_rotations_total", map[string]string{"outcome": "done", "trigger": "manual", "mode": "staged"}, 1)
	for _, name := range []string{"rekey_credentials_minted_total", "rekey_credentials_revoked_total"} {
		for _, key := range []string{"api", "legacy"} {
			if _, ok := metric(t, reg, name, map[string]string{"key": key}); ok {
				t.Errorf("%s has a series for key %s with metrics_per_key off", name, key)
			}
		}
	}
}

// Scrapes within two seconds share one read of the store; a later scrape
// reads it again.
func TestCountersCachedBriefly(t *testing.T) {
	e := newEnv(t)
	reg := e.withMetrics(rotator.MetricsOptions{PerKey: true})
	if _, ok := metric(t, reg, "rekey_credentials_minted_total", map[string]string{"key": "api"}); ok {
		t.Fatal("a credential counted in an empty store")
	}
	at := e.clock.Now()
	if err := e.store.Save(e.ctx, rotator.Commit{Credentials: []*rotator.Credential{
		{Key: "api", Generation: 1, Name: "api-v1", IssuerID: "id-1", State: rotator.CredCurrent, CreatedAt: at},
	}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := metric(t, reg, "rekey_credentials_minted_total", map[string]string{"key": "api"}); ok {
		t.Error("a scrape within the cache's two seconds read the store again")
	}
	e.clock.Advance(2 * time.Second)
	wantMetric(t, reg, "rekey_credentials_minted_total", map[string]string{"key": "api"}, 1)
}
