package rotator_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/store/sqlite"
	"github.com/rekeyhq/rekey/store/sqlstore"
)

// fakeClock is a manual clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	if t.After(c.t) {
		c.t = t
	}
	c.mu.Unlock()
}
func (c *fakeClock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// issuer is a fake issuer: a ledger of credentials, and func fields to
// inject failures. It records every secret it mints so tests can scan for
// leaks.
type issuer struct {
	mu      sync.Mutex
	n       int
	live    map[string]string // id → name
	revoked map[string]bool
	secrets []string
	calls   []string
	created map[string]int                      // name → credentials created under it
	mint    func(req rotator.MintRequest) error // nil = succeed
	revoke  func(ref rotator.CredentialRef) error
}

func newIssuer() *issuer {
	return &issuer{live: map[string]string{}, revoked: map[string]bool{}, created: map[string]int{}}
}

func (i *issuer) Mint(_ context.Context, req rotator.MintRequest) (rotator.Minted, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.calls = append(i.calls, "mint "+req.Name)
	if i.mint != nil {
		if err := i.mint(req); err != nil {
			return rotator.Minted{}, err
		}
	}
	i.n++
	id := fmt.Sprintf("id-%d", i.n)
	sec := fmt.Sprintf("sk_test_%s_%d_%08x", req.Key, i.n, time.Now().UnixNano()&0xffffffff)
	i.live[id] = req.Name
	i.created[req.Name]++
	i.secrets = append(i.secrets, sec)
	return rotator.Minted{ID: id, Secret: rotator.NewSecret(sec)}, nil
}

func (i *issuer) Revoke(_ context.Context, ref rotator.CredentialRef) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.calls = append(i.calls, "revoke "+ref.ID)
	if i.revoke != nil {
		if err := i.revoke(ref); err != nil {
			return err
		}
	}
	delete(i.live, ref.ID)
	i.revoked[ref.ID] = true
	return nil
}

func (i *issuer) FindByName(_ context.Context, _, name string) ([]string, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	var ids []string
	for id, n := range i.live {
		if n == name {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

func (i *issuer) isRevoked(id string) bool { i.mu.Lock(); defer i.mu.Unlock(); return i.revoked[id] }
func (i *issuer) liveCount() int           { i.mu.Lock(); defer i.mu.Unlock(); return len(i.live) }
func (i *issuer) allSecrets() []string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return append([]string(nil), i.secrets...)
}

// memSink is an in-memory sink with the Sink contract's semantics, failure
// injection per method, and a log of every current value a consumer could
// have read.
type memSink struct {
	mu     sync.Mutex
	vals   map[string]*slots
	fail   map[string]error // method → error
	reads  []string         // current fingerprints over time
	noRead bool             // hide PendingReader
}

type slots struct{ cur, pend, prev string }

func newSink() *memSink { return &memSink{vals: map[string]*slots{}, fail: map[string]error{}} }

func (s *memSink) failOn(method string, err error) { s.mu.Lock(); s.fail[method] = err; s.mu.Unlock() }

func (s *memSink) slot(t rotator.Target) *slots {
	v, ok := s.vals[t.Path]
	if !ok {
		v = &slots{}
		s.vals[t.Path] = v
	}
	return v
}

func (s *memSink) check(method string) error {
	if err := s.fail[method]; err != nil {
		return err
	}
	return nil
}

func (s *memSink) Stage(_ context.Context, t rotator.Target, d rotator.Delivery) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check("stage"); err != nil {
		return err
	}
	v := s.slot(t)
	if v.cur == "" {
		v.cur = d.Secret.Reveal()
	} else if rotator.Fingerprint(v.cur) != d.Fingerprint {
		v.pend = d.Secret.Reveal()
	}
	s.reads = append(s.reads, rotator.Fingerprint(v.cur))
	return nil
}

func (s *memSink) Promote(_ context.Context, t rotator.Target, d rotator.Delivery) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check("promote"); err != nil {
		return err
	}
	v := s.slot(t)
	if v.cur != "" && rotator.Fingerprint(v.cur) == d.Fingerprint {
		return nil
	}
	if v.pend == "" || rotator.Fingerprint(v.pend) != d.Fingerprint {
		return rotator.Permanent(errors.New("memsink: nothing staged to promote"))
	}
	v.prev, v.cur, v.pend = v.cur, v.pend, ""
	s.reads = append(s.reads, rotator.Fingerprint(v.cur))
	return nil
}

// Replace makes d the only value (an emergency's delivery).
func (s *memSink) Replace(_ context.Context, t rotator.Target, d rotator.Delivery) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check("stage"); err != nil {
		return err
	}
	v := s.slot(t)
	v.cur, v.pend, v.prev = d.Secret.Reveal(), "", ""
	s.reads = append(s.reads, rotator.Fingerprint(v.cur))
	return nil
}

func (s *memSink) Cleanup(_ context.Context, t rotator.Target, d rotator.Delivery) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check("cleanup"); err != nil {
		return err
	}
	v := s.slot(t)
	v.prev = ""
	if v.pend != "" && rotator.Fingerprint(v.pend) != d.Fingerprint {
		v.pend = ""
	}
	return nil
}

func (s *memSink) Rollback(_ context.Context, t rotator.Target, d rotator.Delivery) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check("rollback"); err != nil {
		return err
	}
	v := s.slot(t)
	if v.cur != "" && rotator.Fingerprint(v.cur) == d.Fingerprint && v.prev != "" && rotator.Fingerprint(v.prev) == d.OldFingerprint {
		v.cur, v.prev = v.prev, ""
	}
	if v.pend != "" && rotator.Fingerprint(v.pend) == d.Fingerprint {
		v.pend = ""
	}
	s.reads = append(s.reads, rotator.Fingerprint(v.cur))
	return nil
}

func (s *memSink) Inspect(_ context.Context, t rotator.Target) (rotator.SinkState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check("inspect"); err != nil {
		return rotator.SinkState{}, err
	}
	v := s.slot(t)
	fp := func(x string) string {
		if x == "" {
			return ""
		}
		return rotator.Fingerprint(x)
	}
	return rotator.SinkState{Exists: v.cur != "", Managed: true, Current: fp(v.cur), Pending: fp(v.pend), Previous: fp(v.prev)}, nil
}

func (s *memSink) Remove(_ context.Context, t rotator.Target) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.vals, t.Path)
	return nil
}

func (s *memSink) current(path string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.vals[path]; ok {
		return v.cur
	}
	return ""
}

// readerSink adds PendingReader to memSink.
type readerSink struct{ *memSink }

func (s readerSink) ReadPending(_ context.Context, t rotator.Target, fp string) (rotator.Secret, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.slot(t)
	if v.pend != "" && rotator.Fingerprint(v.pend) == fp {
		return rotator.NewSecret(v.pend), nil
	}
	return rotator.Secret{}, rotator.ErrNotFound
}

// traffic is a scripted traffic source.
type traffic struct {
	mu    sync.Mutex
	value float64
	err   error
	polls int
}

func (t *traffic) set(v float64, err error) { t.mu.Lock(); t.value, t.err = v, err; t.mu.Unlock() }
func (t *traffic) Unauthorized(context.Context, rotator.TrafficQuery) (rotator.Reading, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.polls++
	return rotator.Reading{Value: t.value}, t.err
}

// notes records notifications.
type notes struct {
	mu   sync.Mutex
	evs  []rotator.Event
	down bool // answer every delivery with a retryable error
}

func (n *notes) Notify(_ context.Context, ev rotator.Event) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.down {
		return errors.New("notifier unavailable")
	}
	n.evs = append(n.evs, ev)
	return nil
}

func (n *notes) setDown(down bool) { n.mu.Lock(); n.down = down; n.mu.Unlock() }

func (n *notes) kinds() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, e := range n.evs {
		out = append(out, e.Kind)
	}
	return out
}

func (n *notes) text() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var b strings.Builder
	for _, e := range n.evs {
		fmt.Fprintf(&b, "%+v\n", e)
	}
	return b.String()
}

// env is an engine over a real SQLite store with fakes around it.
type env struct {
	t      *testing.T
	ctx    context.Context
	clock  *fakeClock
	store  *sqlstore.Store
	iss    *issuer
	sinks  []*memSink
	src    *traffic
	notes  *notes
	key    *rotator.Key
	engine *rotator.Engine
	dbPath string
	// identities, when set, is the engine's Options.Identities.
	identities func(id string) []string
}

type envOpt func(*env)

func newEnv(t *testing.T, opts ...envOpt) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), clock: newClock(), iss: newIssuer(), src: &traffic{}, notes: &notes{}}
	e.dbPath = filepath.Join(t.TempDir(), "rekey.db")
	st, err := sqlite.Open(e.ctx, e.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e.store = st
	e.sinks = []*memSink{newSink(), newSink()}
	e.key = &rotator.Key{
		Name: "api", Issuer: e.iss, IssuerName: "fake", Owners: []string{"alice@example.com"},
		Drain: rotator.DrainPolicy{Source: e.src, SourceName: "scripted", QuietPeriod: 5 * time.Minute, MaxWait: time.Hour, PollInterval: time.Minute},
		Watch: rotator.WatchPolicy{Period: 10 * time.Minute, PollInterval: time.Minute},
	}
	for i, s := range e.sinks {
		e.key.Sinks = append(e.key.Sinks, rotator.SinkBinding{SinkName: fmt.Sprintf("mem%d", i), Sink: readerSink{s}, Target: rotator.Target{Key: "api", Path: "api"}})
	}
	for _, o := range opts {
		o(e)
	}
	e.engine = e.newEngine(nil)
	return e
}

func (e *env) newEngine(fp func(string)) *rotator.Engine {
	eng, err := rotator.New(rotator.Options{
		Store: e.store, Keys: []*rotator.Key{e.key}, Notifiers: map[string]rotator.Notifier{"notes": e.notes},
		Clock: e.clock, Backoff: rotator.Backoff{Base: time.Second, Max: time.Minute, Factor: 2}, Failpoint: fp,
		Inbound: e.store, State: e.store, Identities: e.identities,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { eng.Close(time.Second) })
	return eng
}

// run drives rotations, advancing the fake clock to each next attempt,
// until the rotation is terminal or held, or the step budget runs out.
func (e *env) run(id string, budget int) *rotator.Rotation {
	e.t.Helper()
	for range budget {
		e.engine.RunOnce(e.ctx)
		r, err := e.store.GetRotation(e.ctx, id)
		if err != nil {
			e.t.Fatal(err)
		}
		if r.Phase.Terminal() || r.Hold != rotator.HoldNone {
			return r
		}
		e.clock.Set(r.NextAttemptAt)
	}
	r, _ := e.store.GetRotation(e.ctx, id)
	return r
}

func (e *env) trigger(t rotator.Trigger, mode rotator.Mode) *rotator.Rotation {
	e.t.Helper()
	r, err := e.engine.Trigger(e.ctx, rotator.TriggerRequest{Key: "api", Trigger: t, Mode: mode, Actor: "tester", Reason: "test"})
	if err != nil {
		e.t.Fatalf("trigger %s: %v", t, err)
	}
	return r
}

// bootstrap gives the key generation 1, as the automatic bootstrap of a
// key with bootstrap: true does (without its start gate).
func (e *env) bootstrap() {
	e.t.Helper()
	was := e.key.Bootstrap
	e.key.Bootstrap = true
	defer func() { e.key.Bootstrap = was }()
	boot, err := e.engine.Trigger(e.ctx, rotator.TriggerRequest{Key: "api", Trigger: rotator.TriggerBootstrap, Actor: rotator.ActorScheduler, Reason: "no credential yet"})
	if err != nil {
		e.t.Fatalf("bootstrap: %v", err)
	}
	r := e.run(boot.ID, 50)
	if r.Phase != rotator.PhaseDone {
		e.t.Fatalf("bootstrap ended in %s (%s): %s", r.Phase, r.Hold, r.LastError)
	}
}

func (e *env) creds() map[int]*rotator.Credential {
	list, err := e.store.Credentials(e.ctx, "api")
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[int]*rotator.Credential{}
	for _, c := range list {
		out[c.Generation] = c
	}
	return out
}

func (e *env) actions(rotationID string) []string {
	evs, err := e.store.Audit(e.ctx, rotator.AuditFilter{RotationID: rotationID})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Action)
	}
	return out
}
