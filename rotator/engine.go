package rotator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure an Engine. Store and Keys are required.
type Options struct {
	Store     Store
	Keys      []*Key
	Notifiers map[string]Notifier
	Clock     Clock
	Logger    *slog.Logger
	Metrics   *Metrics

	// Concurrency bounds how many rotations run steps at once (default 4).
	Concurrency int
	// PollInterval is how often the engine looks for due rotations (default 1s).
	PollInterval time.Duration
	// StepTimeout bounds one phase step (default 60s).
	StepTimeout time.Duration
	Backoff     Backoff
	// Owner identifies this process in rotation leases and in the cluster
	// view; it must be unique per process (default random).
	Owner string
	// LeaseTTL is how long a rotation's lease outlives its holder's last
	// heartbeat (default DefaultLeaseTTL): the takeover time after a crash.
	LeaseTTL time.Duration
	// Member, when set, registers this process in the cluster view and
	// heartbeats it while Run runs (the store must implement Membership).
	Member *Member
	// Inbound records exposure and departure reports (needed by Intake).
	Inbound InboundStore
	// State holds the engine's and adapters' small durable state.
	State StateStore
	// OnDeparted, when set, takes away what lets a person who left act
	// through rekey (the app: revoke their API tokens, audited as by
	// d.Actor()), and returns what it left working that they may still use
	// (tokens they created for others, shared secrets), which the departure
	// notifies and audits. It is called for each identity a departure
	// names, until it succeeds once per departure; an error retries it.
	OnDeparted func(ctx context.Context, d Departure) (remaining []string, err error)
	// Identities returns the names of one person, canonical first, then
	// every alias (auth.identities): a departure is recorded under all.
	Identities func(id string) []string
	// Outbox makes notifications durable; nil keeps them in memory.
	Outbox Outbox
	// OutboxDatabaseClock judges delivery claims and retry times by the
	// database's clock (the Outbox must implement DatabaseClock), not this
	// host's: several daemons sharing a store then agree on them.
	OutboxDatabaseClock bool
	// EnqueueOnly queues notifications without delivering them (the CLI:
	// the daemon delivers what it queued).
	EnqueueOnly bool
	// Breaker bounds automatic emergency revocations (default DefaultBreaker).
	Breaker BreakerPolicy
	// Retention bounds delivered notifications and processed inbound
	// events (default DefaultRetention); the audit trail is kept.
	Retention Retention
	// Failpoint, when set, is called at named points ("<phase>:before" after
	// the phase's intent is persisted, "<phase>:after" after its side effect
	// and before its record). Crash tests make it kill the process.
	Failpoint func(name string)
}

// Engine drives rotations. It is safe for concurrent use; commands (Trigger,
// Approve, …) may be called while Run is running.
type Engine struct {
	store     Store
	keys      map[string]*Key
	keyOrder  []string
	clock     Clock
	log       *slog.Logger
	metrics   *Metrics
	dispatch  *dispatcher
	conc      int
	poll      time.Duration
	stepTO    time.Duration
	backoff   Backoff
	owner     string
	ttl       time.Duration
	member    *Member
	logs      *quietLog
	failpoint func(string)
	inbound   InboundStore
	state     StateStore

	wake        chan struct{}
	sem         chan struct{}
	urgentSem   chan struct{}
	driving     atomic.Bool // Run is running: new emergencies are driven at once
	backlog     atomic.Bool // the last scan left due rotations behind
	evaluating  sync.Mutex  // one policy evaluation at a time
	mu          sync.Mutex
	running     map[string]bool // rotation ids with a driver
	lastGauges  atomic.Int64    // when a scan last read the gauges (Unix ns)
	lastKeyAges atomic.Int64    // when gauges last read the key ages (Unix ns)
	secrets     map[string]Secret
	// submissions are secrets people minted, between Submit and the mint
	// step that records them.
	submissions   map[string]submission
	plans         map[string]*departurePlan // departure plans without a StateStore (tests)
	breaker       breakerState              // without a StateStore (tests)
	breakerPolicy BreakerPolicy
	retention     Retention
	lastPrune     time.Time
	digestMu      sync.Mutex
	digests       map[string]digest // without a StateStore (tests)
	warned        map[string]bool
	departed      departedCache
	onDeparted    func(ctx context.Context, d Departure) ([]string, error)
	identities    func(id string) []string
	wg            sync.WaitGroup
	closeOnce     sync.Once
}

// New builds an engine.
func New(o Options) (*Engine, error) {
	if o.Store == nil {
		return nil, errors.New("rotator: a store is required")
	}
	e := &Engine{
		store:         o.Store,
		keys:          make(map[string]*Key, len(o.Keys)),
		clock:         o.Clock,
		log:           o.Logger,
		metrics:       o.Metrics,
		conc:          o.Concurrency,
		poll:          o.PollInterval,
		stepTO:        o.StepTimeout,
		backoff:       o.Backoff,
		owner:         o.Owner,
		ttl:           o.LeaseTTL,
		member:        o.Member,
		failpoint:     o.Failpoint,
		inbound:       o.Inbound,
		state:         o.State,
		onDeparted:    o.OnDeparted,
		identities:    o.Identities,
		wake:          make(chan struct{}, 1),
		running:       map[string]bool{},
		secrets:       map[string]Secret{},
		submissions:   map[string]submission{},
		plans:         map[string]*departurePlan{},
		breakerPolicy: o.Breaker,
		retention:     o.Retention,
		digests:       map[string]digest{},
	}
	for _, k := range o.Keys {
		if _, dup := e.keys[k.Name]; dup {
			return nil, fmt.Errorf("rotator: key %q defined twice", k.Name)
		}
		e.keys[k.Name] = k
		e.keyOrder = append(e.keyOrder, k.Name)
	}
	if e.clock == nil {
		e.clock = SystemClock
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.metrics == nil {
		e.metrics = NewMetrics(nil)
	}
	if ts, ok := o.Store.(TotalsStore); ok {
		e.metrics.counts.attach(ts, e.clock, e.log)
	} else {
		e.log.Warn("the store cannot count what happened to keys: rekey_credentials_*_total, rekey_rotations_total and rekey_watch_alerts_total are not exported")
	}
	if e.conc <= 0 {
		e.conc = 4
	}
	if e.poll <= 0 {
		e.poll = time.Second
	}
	if e.stepTO <= 0 {
		e.stepTO = 60 * time.Second
	}
	if e.backoff == (Backoff{}) {
		e.backoff = DefaultBackoff
	}
	if e.owner == "" {
		e.owner = "rekey-" + randomHex(6)
	}
	if e.ttl <= 0 {
		e.ttl = DefaultLeaseTTL
	}
	e.logs = newQuietLog(e.log)
	if e.breakerPolicy.Max == 0 {
		e.breakerPolicy.Max = DefaultBreaker.Max
	}
	if e.breakerPolicy.Window <= 0 {
		e.breakerPolicy.Window = DefaultBreaker.Window
	}
	if e.retention.Outbox == 0 {
		e.retention.Outbox = DefaultRetention.Outbox
	}
	if e.retention.Inbound == 0 {
		e.retention.Inbound = DefaultRetention.Inbound
	}
	if e.retention.Digest <= 0 {
		e.retention.Digest = DefaultRetention.Digest
	}
	e.sem = make(chan struct{}, e.conc)
	e.urgentSem = make(chan struct{}, 32)
	e.dispatch = newDispatcher(o.Notifiers, o.Outbox, !o.EnqueueOnly, e.clock, e.log, e.metrics)
	e.dispatch.present = e.presentOwners
	if dc, ok := o.Outbox.(DatabaseClock); ok && o.OutboxDatabaseClock {
		e.dispatch.db = dc
	}
	e.dispatch.ttl = e.ttl
	e.dispatch.start()
	return e, nil
}

// Key returns the configured key by name.
func (e *Engine) Key(name string) (*Key, bool) {
	k, ok := e.keys[name]
	return k, ok
}

// Keys returns the configured keys in configuration order.
func (e *Engine) Keys() []*Key {
	out := make([]*Key, 0, len(e.keyOrder))
	for _, n := range e.keyOrder {
		out = append(out, e.keys[n])
	}
	return out
}

// Store returns the engine's store.
func (e *Engine) Store() Store { return e.store }

// Run drives due rotations until ctx ends, then waits for running steps and
// queued notifications (bounded) to finish. Interrupted rotations — from a
// crash of this or another daemon — are due at start and roll forward.
func (e *Engine) Run(ctx context.Context) error {
	e.driving.Store(true)
	defer e.driving.Store(false)
	if stop := e.heartbeatMember(ctx); stop != nil {
		defer stop()
	}
	t := time.NewTicker(e.poll)
	defer t.Stop()
	housekeeping := true
	for {
		e.scan(ctx, housekeeping)
		select {
		case <-ctx.Done():
			e.wg.Wait()
			return nil
		case <-t.C:
			housekeeping = true
		case <-e.wake:
			// Woken by a finished step, a new trigger or a decision: look
			// for due rotations now; inbound retries, digests and
			// retention wait for the next tick.
			housekeeping = false
		}
	}
}

// Close delivers queued notifications (waiting up to grace) and stops the
// notifier queues. Call it after Run returned.
func (e *Engine) Close(grace time.Duration) {
	e.closeOnce.Do(func() { e.dispatch.stop(grace) })
}

// Wake makes Run look for due rotations now.
func (e *Engine) Wake() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Drain waits until no driver is running (for tests and benchmarks).
func (e *Engine) Drain() { e.wg.Wait() }

// scan starts a driver for every due rotation a slot is free for. When it
// leaves due rotations behind (slots busy, or more due than it listed),
// the next driver to finish wakes Run at once: throughput is bounded by
// the work, not by concurrency ÷ poll interval.
func (e *Engine) scan(ctx context.Context, housekeeping bool) {
	if ctx.Err() != nil {
		return
	}
	if housekeeping {
		e.processPending(ctx)
		e.flushDigests(ctx)
		e.prune(ctx)
		now, last := e.clock.Now().UnixNano(), e.lastGauges.Load()
		if (now-last >= int64(gaugesEvery) || now < last) && e.lastGauges.CompareAndSwap(last, now) {
			e.gauges(ctx)
		}
	}
	limit := 4 * e.conc
	due, err := e.store.DueRotations(ctx, e.clock.Now(), limit)
	if err != nil {
		e.logs.error("due", "list due rotations", "err", err)
		return
	}
	e.logs.ok("due", "store reachable again: listing due rotations")
	e.backlog.Store(len(due) == limit)
	for _, r := range due {
		if !e.claimLocal(r.ID) {
			continue
		}
		select {
		case e.sem <- struct{}{}:
		default:
			e.releaseLocal(r.ID)
			e.backlog.Store(true)
			return // all slots busy: the next driver to finish wakes Run
		}
		e.wg.Add(1)
		go func(id string) {
			defer e.wg.Done()
			defer func() {
				<-e.sem
				if e.backlog.Load() {
					e.Wake()
				}
			}()
			defer e.releaseLocal(id)
			e.drive(ctx, id, "")
		}(r.ID)
	}
}

func (e *Engine) claimLocal(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.running[id] {
		return false
	}
	e.running[id] = true
	return true
}

func (e *Engine) releaseLocal(id string) {
	e.mu.Lock()
	delete(e.running, id)
	e.mu.Unlock()
}

// gaugesEvery bounds how often a scan refreshes the gauges read from the
// store (held rotations, outbox backlog): often enough for any scrape, and
// not once per RunOnce or per wake-up.
const gaugesEvery = time.Second

// RunOnce drives every due rotation to its next wait, synchronously. It is
// what `rekey rotate --wait` and tests without a running daemon use.
func (e *Engine) RunOnce(ctx context.Context) {
	e.scan(ctx, true)
	e.wg.Wait()
}

// DriveOne drives rotation id to its next wait, synchronously, and nothing
// else: no other rotation, no inbound event, no housekeeping. It is what
// the break-glass CLI's `rotate --wait` runs, so that it acts only on the
// rotation it was asked for.
func (e *Engine) DriveOne(ctx context.Context, id string) {
	if !e.claimLocal(id) {
		return
	}
	defer e.releaseLocal(id)
	e.drive(ctx, id, "")
}

// drive runs steps of one rotation until it waits (hold, backoff, polling),
// finishes, or loses its lease. With only set, it stops as soon as the
// rotation leaves that phase (the urgent path drives just the revoke).
func (e *Engine) drive(ctx context.Context, id string, only Phase) {
	h, ok, err := e.hold(ctx, id)
	if err != nil || !ok {
		if err != nil {
			e.logs.warn("lease claim", "lease rotation", "rotation", id, "err", err)
		}
		return
	}
	var last *Rotation
	// Nobody drives a finished rotation: its lease needs no write.
	defer func() { h.release(last == nil || !last.Phase.Terminal()) }()
	due := func(r *Rotation) bool {
		return !r.NextAttemptAt.After(e.clock.Now()) && (only == "" || r.Phase == only)
	}
	last = e.interpret(h.ctx, id, due, h)
}

// interpret runs rotation id through its lifecycle table while may(r)
// allows (the caller's test of whether it is due), keeping the rotation and its key's credentials between
// steps as its last commit left them (the caller holds the lease h, and every
// write checks the rotation's version and is fenced by h's epoch); after a
// conflict it reads them again. It stops before any step once h is lost.
func (e *Engine) interpret(ctx context.Context, id string, may func(*Rotation) bool, h *holder) *Rotation {
	var d *driver
	defer func() {
		if d != nil {
			_, _ = d.flush(ctx)
		}
	}()
	for i := 0; i < 64 && ctx.Err() == nil; i++ {
		if d == nil {
			var err error
			if d, err = e.load(ctx, id); err != nil {
				e.logs.error("load "+id, "load rotation", "rotation", id, "err", err)
				return nil
			}
			d.holdBy(h)
		}
		if d.r.Phase.Terminal() || !may(d.r) || !h.held() {
			return d.r
		}
		proceed, reload := d.turn(ctx)
		if reload {
			d = nil
		}
		if !proceed {
			if d != nil {
				return d.r
			}
			return nil
		}
	}
	if d != nil {
		return d.r
	}
	return nil
}

// load reads a rotation, its key and the key's credentials into a driver.
func (e *Engine) load(ctx context.Context, id string) (*driver, error) {
	r, err := e.store.GetRotation(ctx, id)
	if err != nil {
		return nil, err
	}
	k, ok := e.keys[r.Key]
	if !ok {
		return nil, fmt.Errorf("rotation %s is for key %s, which is no longer configured; it waits: %w", id, r.Key, ErrNotFound)
	}
	list, err := e.workingCredentials(ctx, r.Key, r.OldGeneration, r.NewGeneration, r.TargetGeneration)
	if err != nil {
		return nil, fmt.Errorf("load credentials of %s: %w", r.Key, err)
	}
	creds := make(map[int]*Credential, len(list))
	for _, c := range list {
		creds[c.Generation] = c
	}
	return &driver{e: e, k: k, r: r, creds: creds}, nil
}

// workingCredentials reads what a rotation of key works on (see
// WorkingSetStore): its cost does not grow with the key's history.
func (e *Engine) workingCredentials(ctx context.Context, key string, gens ...int) ([]*Credential, error) {
	if w, ok := e.store.(WorkingSetStore); ok {
		return w.WorkingCredentials(ctx, key, gens...)
	}
	return e.store.Credentials(ctx, key)
}

// urgent drives a new emergency rotation's revoke at once, outside the
// scan's queue and concurrency slots: the time from an exposure report to
// the revoke call must not depend on how many rotations are queued. The
// rest of the rotation goes through the normal scan.
func (e *Engine) urgent(id string) {
	if !e.claimLocal(id) {
		return
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer e.releaseLocal(id)
		e.urgentSem <- struct{}{} // bounded: a burst of emergencies queues here, ahead of routine work
		defer func() { <-e.urgentSem }()
		ctx, cancel := context.WithTimeout(context.Background(), 2*e.stepTO)
		defer cancel()
		e.drive(ctx, id, PhaseRevoking)
		e.Wake()
	}()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// NewRotationID returns a fresh rotation id.
func NewRotationID() string { return "rot_" + randomHex(8) }
