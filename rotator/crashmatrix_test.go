package rotator_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/store/sqlite"
	"github.com/rekeyhq/rekey/store/sqlstore"
)

// TestCrashMatrix kills the engine at every point the lifecycle tables
// define — before and after each side effect of each phase of each
// lifecycle, rollback, abandon, orphan reaping and the decommission loop
// included — restarts it on the same SQLite database, and checks that the
// rotation ends as an uninterrupted run of the same scenario does, with
// the invariants of DESIGN.md: no orphan, every sink's current value the
// store's current credential, the audit chain intact, every notification
// delivered to both notifiers, and no secret anywhere.
//
// The list of points is generated from rotator.Lifecycles(): a new phase
// or side effect without a scenario that reaches it fails this test.
func TestCrashMatrix(t *testing.T) {
	t.Parallel()
	runCrashMatrix(t, crashScenarios())
}

// runCrashMatrix kills and restarts every point of every lifecycle with
// the first of scenarios that reaches it.
func runCrashMatrix(t *testing.T, scenarios []*crashScenario) {
	type point struct{ lifecycle, name string }
	var points []point
	for _, lc := range rotator.Lifecycles() {
		for _, spec := range lc.Phases {
			for _, act := range spec.Acts {
				name := string(spec.Phase)
				if act != "" {
					name += "/" + act
				}
				points = append(points, point{lc.Name, name + ":before"}, point{lc.Name, name + ":after"})
			}
		}
	}
	covered := 0
	start := time.Now()
	for _, p := range points {
		sc := findScenario(scenarios, p.lifecycle, strings.SplitN(p.name, ":", 2)[0])
		if sc == nil {
			t.Errorf("no crash scenario reaches %s in the %s lifecycle: add one to crashScenarios", p.name, p.lifecycle)
			continue
		}
		covered++
		t.Run(p.lifecycle+"/"+sc.name+"/"+p.name, func(t *testing.T) {
			t.Parallel()
			want := runScenario(t, sc, "")
			got := runScenario(t, sc, p.name)
			if got != want {
				t.Errorf("end state after a crash at %s:\n got  %s\n want %s", p.name, got, want)
			}
		})
	}
	t.Cleanup(func() {
		if !t.Failed() {
			t.Logf("crash matrix: %d points of %d lifecycles, each killed and restarted (%s)", covered, len(rotator.Lifecycles()), time.Since(start).Round(time.Millisecond))
		}
	})
}

// crashScenario is one way to drive a rotation into some phases' side
// effects.
type crashScenario struct {
	name      string
	lifecycle string
	covers    []string // phase[/act] it reaches
	// setup prepares the world (with an engine that has no failpoint) and
	// returns a function that starts the rotation under test.
	setup func(w *crashWorld) func() *rotator.Rotation
	// each, if set, runs after every engine pass (to act as a person would).
	each func(w *crashWorld, r *rotator.Rotation)
	// window, when set, makes the issuer honour idempotency keys for that
	// long (rotator.IdempotentMinter); lapses says the scenario lets a key
	// lapse, so that a name may be created twice (the second reaped).
	window time.Duration
	lapses bool
}

func findScenario(all []*crashScenario, lifecycle, point string) *crashScenario {
	for _, sc := range all {
		if sc.lifecycle == lifecycle && slices.Contains(sc.covers, point) {
			return sc
		}
	}
	return nil
}

// crashWorld is one engine (restartable) over one SQLite database with
// fakes around it: an issuer that keeps a ledger, two in-memory sinks, a
// scripted traffic source and two notifiers behind the durable outbox.
type crashWorld struct {
	t       *testing.T
	ctx     context.Context
	clock   *fakeClock
	dbPath  string
	store   *sqlstore.Store
	iss     *verifyingIssuer
	sinks   []*memSink
	src     *traffic
	notes   [2]*notes
	key     *rotator.Key
	engine  *rotator.Engine
	killed  chan string
	fired   atomic.Bool
	armed   string // the failpoint of this run, kept across restarts
	engines []*rotator.Engine

	extra      []*rotator.Key // more keys beside api
	lapses     bool           // the scenario lets an idempotency key lapse
	stageFails atomic.Int32
	restarted  bool // restartOnceIn did
	// diedInEach: the failpoint fired inside a person's command (a submit
	// stages at once); the process is gone.
	diedInEach bool
	// beforeSave, when set, sees every commit of the engines started
	// after it was set, before the store does.
	beforeSave func(rotator.Commit)
}

// hookedStore is the store with crashWorld.beforeSave in front of Save.
type hookedStore struct {
	*sqlstore.Store
	w *crashWorld
}

func (h hookedStore) Save(ctx context.Context, c rotator.Commit) error {
	h.w.beforeSave(c)
	return h.Store.Save(ctx, c)
}

// verifyingIssuer adds Verifier to the fake issuer, with one-shot faults.
type verifyingIssuer struct {
	*issuer
	mu            sync.Mutex
	verifyFail    int // fail this many verify calls (retryable)
	lost          int // lose the answer of this many mints (see loseMints)
	lostPermanent bool
	keys          idempotencyKeys // what a key's first mint answered (honourKeys)
	stored        storedFailures  // failures stored for a key and replayed (storeFailures)
}

func (v *verifyingIssuer) Verify(_ context.Context, _ string, s rotator.Secret, _ map[string]any) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.verifyFail > 0 {
		v.verifyFail--
		return errors.New("probe timed out")
	}
	if s.IsZero() {
		return rotator.Permanent(errors.New("empty secret"))
	}
	return nil
}

func newCrashWorld(t *testing.T, readable bool) *crashWorld {
	w := &crashWorld{t: t, ctx: context.Background(), clock: newClock(), iss: &verifyingIssuer{issuer: newIssuer()},
		src: &traffic{}, notes: [2]*notes{{}, {}}, killed: make(chan string, 1)}
	w.dbPath = filepath.Join(t.TempDir(), "rekey.db")
	st, err := sqlite.Open(w.ctx, w.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w.store = st
	w.sinks = []*memSink{newSink(), newSink()}
	w.key = &rotator.Key{
		Name: "api", Issuer: w.iss, IssuerName: "fake", Owners: []string{"alice@example.com"}, Verify: true,
		Drain: rotator.DrainPolicy{Source: w.src, SourceName: "scripted", QuietPeriod: time.Minute, MaxWait: time.Hour, PollInterval: 10 * time.Second},
		Watch: rotator.WatchPolicy{Period: time.Minute, PollInterval: 10 * time.Second},
	}
	for i, s := range w.sinks {
		var sink rotator.Sink = s
		switch {
		case readable:
			sink = readerSink{s}
		case i == 0:
			sink = faultySink{Sink: s, w: w}
		}
		w.key.Sinks = append(w.key.Sinks, rotator.SinkBinding{SinkName: fmt.Sprintf("mem%d", i), Sink: sink, Target: rotator.Target{Key: "api", Path: "api"}})
	}
	w.restart("")
	t.Cleanup(func() {
		for _, e := range w.engines {
			e.Close(10 * time.Millisecond)
		}
	})
	return w
}

const crashLease = time.Minute

// restart builds a new engine on the same database, as a restarted
// process would be: nothing in memory survives. failpoint arms a kill.
func (w *crashWorld) restart(failpoint string) {
	w.armed = failpoint
	var fp func(string)
	if failpoint != "" {
		fp = func(name string) {
			if name != failpoint || !w.fired.CompareAndSwap(false, true) {
				return
			}
			w.killed <- name
			select {} // the process is gone: nothing after this point runs
		}
	}
	var st rotator.Store = w.store
	if w.beforeSave != nil {
		st = hookedStore{w.store, w}
	}
	e, err := rotator.New(rotator.Options{
		Store: st, Keys: append([]*rotator.Key{w.key}, w.extra...), Clock: w.clock, Failpoint: fp,
		Notifiers: map[string]rotator.Notifier{"one": w.notes[0], "two": w.notes[1]},
		Outbox:    w.store, Inbound: w.store, State: w.store,
		Backoff:     rotator.Backoff{Base: time.Second, Max: time.Minute, Factor: 2},
		StepTimeout: 10 * time.Second, Owner: "crash-matrix-daemon", LeaseTTL: crashLease,
	})
	if err != nil {
		w.t.Fatal(err)
	}
	w.engine = e
	w.engines = append(w.engines, e)
}

// drive runs the engine until rotation id ends or the failpoint kills it;
// it reports whether it was killed.
func (w *crashWorld) drive(id string, each func(*crashWorld, *rotator.Rotation)) (*rotator.Rotation, bool) {
	w.t.Helper()
	for range 400 {
		done := make(chan struct{})
		go func() { w.engine.RunOnce(w.ctx); close(done) }()
		select {
		case <-done:
		case <-w.killed:
			w.engine.Close(time.Millisecond) // the dead process delivers nothing more
			return nil, true
		}
		r, err := w.store.GetRotation(w.ctx, id)
		if err != nil {
			w.t.Fatal(err)
		}
		if each != nil {
			each(w, r)
			if w.diedInEach {
				w.diedInEach = false
				w.engine.Close(time.Millisecond)
				return nil, true
			}
			if r, err = w.store.GetRotation(w.ctx, id); err != nil {
				w.t.Fatal(err)
			}
		}
		if r.Phase.Terminal() {
			return r, false
		}
		if r.Hold != rotator.HoldNone && r.NextAttemptAt.Year() > 9000 {
			w.t.Fatalf("rotation held for a person (%s): %s", r.Hold, r.HoldDetail)
		}
		w.clock.Set(r.NextAttemptAt)
	}
	w.t.Fatalf("rotation %s did not end", id)
	return nil, false
}

func (w *crashWorld) bootstrap() {
	w.t.Helper()
	r, err := w.engine.Trigger(w.ctx, rotator.TriggerRequest{Key: "api", Trigger: rotator.TriggerBootstrap, Actor: "tester"})
	if err != nil {
		w.t.Fatal(err)
	}
	if r, _ = w.drive(r.ID, nil); r.Phase != rotator.PhaseDone {
		w.t.Fatalf("bootstrap ended %s", r.Phase)
	}
}

func (w *crashWorld) trigger(req rotator.TriggerRequest) func() *rotator.Rotation {
	return func() *rotator.Rotation {
		req.Key, req.Actor = "api", "tester"
		r, err := w.engine.Trigger(w.ctx, req)
		if err != nil {
			w.t.Fatal(err)
		}
		return r
	}
}

// runScenario plays sc, killed at failpoint ("" for none) and restarted,
// and returns a summary of the end state after checking the invariants.
func runScenario(t *testing.T, sc *crashScenario, failpoint string) string {
	t.Helper()
	w := newCrashWorld(t, !strings.Contains(sc.name, "unreadable"))
	w.iss.honourKeys(sc.window, w.clock)
	w.lapses = sc.lapses
	begin := sc.setup(w)
	w.restart(failpoint)
	r := begin()
	end, killed := w.drive(r.ID, sc.each)
	if failpoint != "" {
		if !killed {
			t.Fatalf("scenario %s never reached %s", sc.name, failpoint)
		}
		// The dead daemon's rotation lease and any notification it had
		// claimed for delivery (2m) run out.
		w.clock.Advance(crashLease + 2*time.Minute)
		w.restart("")
		end, _ = w.drive(r.ID, sc.each)
		if sc.window > 0 && failpoint == "minting:after" && w.iss.replayed() == 0 {
			t.Errorf("the mint interrupted after the issuer's answer was resumed without a replay of its idempotency key")
		}
	}
	return w.check(end)
}

// check verifies the invariants after a run and summarizes the end state.
func (w *crashWorld) check(r *rotator.Rotation) string {
	t := w.t
	t.Helper()
	creds, err := w.store.Credentials(w.ctx, "api")
	if err != nil {
		t.Fatal(err)
	}
	live := map[string]bool{}
	var current *rotator.Credential
	states := []string{}
	for _, c := range creds {
		states = append(states, string(c.State))
		if c.State != rotator.CredRevoked {
			live[c.IssuerID] = true
		}
		if c.State == rotator.CredCurrent {
			current = c
		}
	}
	// Invariant 2: every credential live at the issuer is on record as
	// live, and the other way round.
	w.iss.mu.Lock()
	for id, name := range w.iss.live {
		if !live[id] {
			t.Errorf("orphan at the issuer: %s (%s)", id, name)
		}
	}
	for id := range live {
		if _, ok := w.iss.live[id]; !ok && id != "" {
			t.Errorf("credential %s on record as live is not live at the issuer", id)
		}
	}
	w.iss.mu.Unlock()
	w.checkNamesOnce()
	// Every sink serves the store's current credential.
	for i, s := range w.sinks {
		got := s.current("api")
		switch {
		case current == nil && got != "":
			t.Errorf("sink %d serves a value with no current credential on record", i)
		case current != nil && rotator.Fingerprint(got) != current.Fingerprint:
			t.Errorf("sink %d does not serve generation %d", i, current.Generation)
		}
	}
	if problems, err := w.store.VerifyAudit(w.ctx); err != nil || len(problems) > 0 {
		t.Errorf("audit chain: %v %v", problems, err)
	}
	w.checkNotifications(r)
	w.checkNoSecret()
	// A crash can cost a generation (a secret lost before any sink held
	// it is revoked and minted again), so revoked ones are not compared.
	slices.Sort(states)
	states = slices.DeleteFunc(states, func(s string) bool { return s == string(rotator.CredRevoked) })
	return fmt.Sprintf("phase=%s outcome=%q live=%v", r.Phase, r.Outcome, states)
}

// checkNotifications: the outbox is drained, and both notifiers received
// every event, the rotation's end among them, once each by id.
func (w *crashWorld) checkNotifications(r *rotator.Rotation) {
	t := w.t
	t.Helper()
	// The running engine delivers the outbox; a row the dead one claimed
	// becomes due again when its claim (2m on the engine's clock) runs
	// out. Wait for it on a loaded machine with a deadline, not a guess.
	var pending int
	for deadline := time.Now().Add(time.Minute); ; {
		if err := w.store.DB().QueryRowContext(w.ctx, `SELECT COUNT(*) FROM outbox WHERE delivered_at = ''`).Scan(&pending); err != nil {
			t.Fatal(err)
		}
		if pending == 0 || time.Now().After(deadline) {
			break
		}
		w.clock.Advance(3 * time.Minute)
		time.Sleep(20 * time.Millisecond)
	}
	w.engine.Close(5 * time.Second)
	if pending != 0 {
		t.Errorf("%d notifications never delivered", pending)
	}
	ids := [2]map[string]int{{}, {}}
	for i, n := range w.notes {
		n.mu.Lock()
		for _, ev := range n.evs {
			ids[i][ev.ID]++
		}
		n.mu.Unlock()
	}
	for id := range ids[0] {
		if ids[1][id] == 0 {
			t.Errorf("event %s reached notifier one only", id)
		}
	}
	for id := range ids[1] {
		if ids[0][id] == 0 {
			t.Errorf("event %s reached notifier two only", id)
		}
	}
	finished := 0
	w.notes[0].mu.Lock()
	seen := map[string]bool{}
	for _, ev := range w.notes[0].evs {
		if ev.Kind == rotator.EventFinished && ev.RotationID == r.ID && !seen[ev.ID] {
			seen[ev.ID] = true
			finished++
		}
	}
	w.notes[0].mu.Unlock()
	if finished != 1 {
		t.Errorf("the rotation's end was announced %d times, want once", finished)
	}
}

// checkNoSecret scans the database file, the audit trail and every
// notification for each secret the issuer minted (invariant 3).
func (w *crashWorld) checkNoSecret() {
	t := w.t
	t.Helper()
	var hay strings.Builder
	for _, p := range []string{w.dbPath, w.dbPath + "-wal"} {
		if b, err := os.ReadFile(p); err == nil {
			hay.Write(b)
		}
	}
	evs, _ := w.store.Audit(w.ctx, rotator.AuditFilter{})
	fmt.Fprintf(&hay, "%+v", evs)
	for _, n := range w.notes {
		hay.WriteString(n.text())
	}
	for _, s := range w.iss.allSecrets() {
		if strings.Contains(hay.String(), s) {
			t.Errorf("secret of the issuer found in the database, audit or notifications")
		}
	}
}
