package rotator_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// TestCrashMatrixIdempotent runs the crash matrix again with an issuer that
// honours idempotency keys (rotator.IdempotentMinter): every point of every
// lifecycle is killed and restarted, the end state must equal an
// uninterrupted run, and — stricter than the matrix without keys — the
// issuer must have created each name once: a mint interrupted after the
// issuer's answer is resumed by a replay of its key, never by revoking the
// first credential and creating a second. Orphan reaping is reached only
// when a key lapses (the issuer forgot it while the daemon was down): the
// second credential of that name is created, and the first reaped.
func TestCrashMatrixIdempotent(t *testing.T) {
	t.Parallel()
	runCrashMatrix(t, idempotentScenarios())
}

// idempotentScenarios are crashScenarios at an issuer that keeps keys for
// an hour (a restart of the matrix costs 3 minutes of its clock), with the
// lost mints that lead to reaping replaced by lost mints whose key lapses
// before the retry.
func idempotentScenarios() []*crashScenario {
	var out []*crashScenario
	for _, sc := range crashScenarios() {
		if slices.Contains(sc.covers, "minting/reap") {
			continue // a lost answer is replayed here: nothing to reap
		}
		c := *sc
		c.window = time.Hour
		out = append(out, &c)
	}
	staged := rotator.TriggerRequest{Trigger: rotator.TriggerManual, Mode: rotator.ModeStaged, Reason: "crash matrix"}
	exposure := rotator.TriggerRequest{Trigger: rotator.TriggerExposure, Mode: rotator.ModeEmergency, TargetGeneration: 1, Reason: "crash matrix"}
	lapsed := func(req rotator.TriggerRequest) func(w *crashWorld) func() *rotator.Rotation {
		return func(w *crashWorld) func() *rotator.Rotation {
			w.bootstrap()
			w.iss.loseMints(1, false)
			return w.trigger(req)
		}
	}
	// The retry comes a backoff (1s) after the lost answer: a window of
	// 1ms has lapsed by then.
	return append(out,
		&crashScenario{name: "mint-lost-key-lapsed-then-reaped", lifecycle: "staged", covers: []string{"minting/reap"},
			window: time.Millisecond, lapses: true, setup: lapsed(staged)},
		&crashScenario{name: "exposure-mint-lost-key-lapsed-then-reaped", lifecycle: "emergency", covers: []string{"minting/reap"},
			window: time.Millisecond, lapses: true, setup: lapsed(exposure)},
	)
}

// idempotencyKeys is an issuer's memory of idempotency keys, as
// draft-ietf-httpapi-idempotency-key-header describes it: the first answer
// to a key is replayed for the window; the same key with another payload
// is refused (422).
type idempotencyKeys struct {
	window  time.Duration // 0: keys are ignored
	clock   *fakeClock
	answers map[string]keyAnswer
	replays int
}

type keyAnswer struct {
	name string
	m    rotator.Minted
	err  error // a stored failure (storeFailures), replayed as it was
	at   time.Time
}

// honourKeys makes the issuer keep idempotency keys for window (0: off).
func (v *verifyingIssuer) honourKeys(window time.Duration, clock *fakeClock) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.keys = idempotencyKeys{window: window, clock: clock, answers: map[string]keyAnswer{}}
}

// IdempotencyWindow implements rotator.IdempotentMinter.
func (v *verifyingIssuer) IdempotencyWindow() time.Duration {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.keys.window
}

// replay answers a mint whose key the issuer still holds.
func (v *verifyingIssuer) replay(req rotator.MintRequest) (rotator.Minted, bool, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	k := &v.keys
	if k.window == 0 || req.IdempotencyKey == "" {
		return rotator.Minted{}, false, nil
	}
	a, ok := k.answers[req.IdempotencyKey]
	if !ok || !k.clock.Now().Before(a.at.Add(k.window)) {
		return rotator.Minted{}, false, nil
	}
	if a.name != req.Name {
		return rotator.Minted{}, true, rotator.Permanent(errors.New("422: idempotency key reused with another payload"))
	}
	k.replays++
	if a.err != nil {
		return rotator.Minted{}, true, a.err
	}
	return a.m, true, nil
}

// store remembers a key's first answer (the caller holds v.mu).
func (k *idempotencyKeys) store(req rotator.MintRequest, m rotator.Minted) {
	if k.window > 0 && req.IdempotencyKey != "" {
		k.answers[req.IdempotencyKey] = keyAnswer{name: req.Name, m: m, at: k.clock.Now()}
	}
}

func (v *verifyingIssuer) replayed() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.keys.replays
}

// checkNamesOnce: at an issuer that honours idempotency keys, no name was
// created twice, unless the scenario let a key lapse.
func (w *crashWorld) checkNamesOnce() {
	w.t.Helper()
	if w.iss.IdempotencyWindow() == 0 || w.lapses {
		return
	}
	w.iss.issuer.mu.Lock()
	defer w.iss.issuer.mu.Unlock()
	for name, n := range w.iss.issuer.created {
		if n > 1 {
			w.t.Errorf("the issuer created %d credentials named %s; with idempotency keys it must create one", n, name)
		}
	}
}

// TestCrashMatrixAbandonedIntent kills and restarts every point of the
// minting phase while a mint intent is abandoned — the issuer stored a
// failed answer for the key (after creating the credential) and replays
// it — in both lifecycles that mint by machine: the end state equals an
// uninterrupted run (generation 3 delivered, generation 2 reaped, no
// orphan).
func TestCrashMatrixAbandonedIntent(t *testing.T) {
	t.Parallel()
	staged := rotator.TriggerRequest{Trigger: rotator.TriggerManual, Mode: rotator.ModeStaged, Reason: "crash matrix"}
	exposure := rotator.TriggerRequest{Trigger: rotator.TriggerExposure, Mode: rotator.ModeEmergency, TargetGeneration: 1, Reason: "crash matrix"}
	stored := func(req rotator.TriggerRequest) func(w *crashWorld) func() *rotator.Rotation {
		return func(w *crashWorld) func() *rotator.Rotation {
			w.bootstrap()
			w.iss.storeFailures(1, true, true)
			return w.trigger(req)
		}
	}
	for _, sc := range []*crashScenario{
		{name: "mint-failure-stored-then-abandoned", lifecycle: "staged", window: time.Hour, setup: stored(staged)},
		{name: "exposure-mint-failure-stored-then-abandoned", lifecycle: "emergency", window: time.Hour, setup: stored(exposure)},
	} {
		want := runScenario(t, sc, "")
		for _, p := range []string{"minting:before", "minting:after", "minting/reap:before", "minting/reap:after"} {
			t.Run(sc.name+"/"+p, func(t *testing.T) {
				t.Parallel()
				if got := runScenario(t, sc, p); got != want {
					t.Errorf("end state after a crash at %s:\n got  %s\n want %s", p, got, want)
				}
			})
		}
	}
}
