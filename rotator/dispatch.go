package rotator

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// dispatcher delivers events to notifiers off the rotation path, one loop
// per notifier, retrying retryable errors with backoff. With an Outbox the
// queue is durable: events survive an outage and a restart and go out in
// order; without one (tests) it is an in-memory queue.
type dispatcher struct {
	log     *slog.Logger
	metrics *Metrics
	outbox  Outbox
	deliver bool
	targets map[string]Notifier
	names   []string
	queues  map[string]chan Event    // in-memory mode
	pokes   map[string]chan struct{} // durable mode
	backoff Backoff
	clock   Clock
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	once    sync.Once
	mu      sync.RWMutex
	closed  bool
	// ttl is the engine's lease TTL: a durable delivery is claimed for
	// about twice it, so that the claims of a daemon that died are taken
	// over about as fast as its rotations.
	ttl time.Duration
	// quiet logs a store outage with backoff, not once per poll.
	quiet *quietLog
	// db, when set, is the clock claims and retries are judged by: this
	// host's clock corrected by its offset from the database's, measured
	// every dbSyncEvery (skew below).
	db   DatabaseClock
	skew atomic.Int64 // nanoseconds to add to clock.Now()
	// busy counts delivery passes under way (durable mode): a clean stop
	// waits for them, so that a notification being sent is not cut off
	// and left claimed until its claim expires.
	busy     atomic.Int64
	syncedAt atomic.Int64 // clock.Now() of the last measure, Unix nanoseconds
	// present drops people who left from an event's owners of key k, so
	// that no notification mentions or pages them (nil: everyone is
	// present).
	present func(k *Key, owners []string) []string
}

// callTimeout bounds one durable delivery: the lease TTL, at least 5s and
// at most 30s.
func (d *dispatcher) callTimeout() time.Duration {
	return min(max(d.ttl, 5*time.Second), 30*time.Second)
}

// claimFor is how long a delivery is claimed: the call, then a TTL.
func (d *dispatcher) claimFor() time.Duration { return d.callTimeout() + max(d.ttl, time.Second) }

const (
	queueSize       = 1024
	maxDeliveries   = 100 // durable: with the 5-minute cap, about eight hours of outage
	memoryAttempts  = 8
	outboxPollEvery = time.Second
)

func newDispatcher(ns map[string]Notifier, outbox Outbox, deliver bool, clock Clock, log *slog.Logger, m *Metrics) *dispatcher {
	d := &dispatcher{log: log, quiet: newQuietLog(log), metrics: m, outbox: outbox, deliver: deliver, targets: ns, clock: clock,
		queues: map[string]chan Event{}, pokes: map[string]chan struct{}{},
		backoff: Backoff{Base: time.Second, Max: 5 * time.Minute, Factor: 2, Jitter: 0.2}}
	for name := range ns {
		d.names = append(d.names, name)
		if outbox != nil {
			d.pokes[name] = make(chan struct{}, 1)
		} else {
			d.queues[name] = make(chan Event, queueSize)
		}
	}
	sort.Strings(d.names)
	d.ctx, d.cancel = context.WithCancel(context.Background())
	return d
}

func (d *dispatcher) start() {
	d.once.Do(func() {
		if !d.deliver {
			return
		}
		for _, name := range d.names {
			d.wg.Add(1)
			if d.outbox != nil {
				go d.durableLoop(name)
			} else {
				go d.memoryLoop(name)
			}
		}
	})
}

// stop lets queued events drain for up to grace, then cancels.
func (d *dispatcher) stop(grace time.Duration) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.closed = true
	d.mu.Unlock()
	for _, q := range d.queues {
		close(q)
	}
	if d.outbox != nil && d.deliver {
		// The durable queue keeps what is left for the next start; give the
		// loops a moment to deliver what is due now. Without loops (the
		// CLI only enqueues) there is nothing to wait for: the daemon
		// delivers, and waiting for it would hold every CLI command for
		// the whole grace whenever the daemon is down.
		for _, name := range d.names {
			d.poke(name)
		}
		t := time.NewTimer(grace)
		defer t.Stop()
		for _, name := range d.names {
			for {
				items, err := d.outbox.DueOutbox(context.Background(), name, d.now(), 1)
				if (err != nil || len(items) == 0) && d.busy.Load() == 0 {
					break
				}
				select {
				case <-t.C:
					d.cancel()
					d.wg.Wait()
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		}
		d.cancel()
		d.wg.Wait()
		return
	}
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		d.cancel()
		<-done
	}
	d.cancel()
}

// targetsOf names the notifiers of k (all when the key names none).
func (d *dispatcher) targetsOf(k *Key) []string {
	if k == nil || len(k.Notifiers) == 0 {
		return d.names
	}
	out := make([]string, 0, len(k.Notifiers))
	for _, n := range k.Notifiers {
		if _, ok := d.targets[n]; ok {
			out = append(out, n)
		}
	}
	return out
}

// rows are the outbox rows of evs, one per notifier of k, to be written in
// the same transaction as the state change they describe. Without an
// outbox (tests) there are none: committed queues the events in memory.
func (d *dispatcher) rows(k *Key, evs []Event) []Notification {
	if d.outbox == nil || len(evs) == 0 {
		return nil
	}
	names := d.targetsOf(k)
	out := make([]Notification, 0, len(evs)*len(names))
	for _, ev := range evs {
		ev.Owners = d.presentOwners(k, ev.Owners)
		for _, n := range names {
			out = append(out, Notification{Notifier: n, Event: ev, Lane: laneOf(ev)})
		}
	}
	return out
}

func (d *dispatcher) presentOwners(k *Key, owners []string) []string {
	if d.present == nil || len(owners) == 0 {
		return owners
	}
	return d.present(k, owners)
}

// laneOf puts what needs a person now — critical events, requests for a
// decision — ahead of the rest.
func laneOf(ev Event) int {
	if ev.Severity == SeverityCritical || ev.Kind == EventHeld || ev.Kind == EventApproval || ev.Kind == EventStarted && ev.Mode == ModeEmergency {
		return 0
	}
	return 1
}

// committed tells the delivery loops that evs are in the outbox (or, in
// memory mode, queues them).
func (d *dispatcher) committed(k *Key, evs []Event) {
	if len(evs) == 0 {
		return
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	names := d.targetsOf(k)
	if d.outbox != nil {
		for _, n := range names {
			d.poke(n)
		}
		return
	}
	if d.closed {
		d.log.Warn("notification after shutdown dropped", "events", len(evs))
		return
	}
	for _, ev := range evs {
		ev.Owners = d.presentOwners(k, ev.Owners)
		for _, n := range names {
			select {
			case d.queues[n] <- ev:
			default:
				d.metrics.notified(n, "dropped")
				d.log.Error("notification queue full; event dropped", "notifier", n, "kind", ev.Kind, "key", ev.Key)
			}
		}
	}
}

func (d *dispatcher) poke(name string) {
	select {
	case d.pokes[name] <- struct{}{}:
	default:
	}
}

// durableLoop delivers a notifier's outbox in order; a retryable failure
// stops the queue until the item's next attempt (so order is kept).
func (d *dispatcher) durableLoop(name string) {
	defer d.wg.Done()
	n := d.targets[name]
	wait := time.NewTimer(0)
	defer wait.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-d.pokes[name]:
		case <-wait.C:
		}
		d.deliverDue(name, n)
		wait.Reset(outboxPollEvery)
	}
}

const dbSyncEvery = 10 * time.Second

// now is the time claims and retry times are judged by: the database's
// (when the dispatcher has one), else this host's.
func (d *dispatcher) now() time.Time {
	return d.clock.Now().Add(time.Duration(d.skew.Load()))
}

// syncClock measures this host's offset from the database's clock, at
// most every dbSyncEvery: the midpoint of the call is taken as the moment
// the database read its clock. A failed measure keeps the last offset.
func (d *dispatcher) syncClock() {
	if d.db == nil {
		return
	}
	local := d.clock.Now()
	if last := d.syncedAt.Load(); last != 0 && local.Sub(time.Unix(0, last)) < dbSyncEvery && !local.Before(time.Unix(0, last)) {
		return
	}
	db, err := d.db.DatabaseNow(d.ctx)
	after := d.clock.Now()
	if err != nil {
		return
	}
	mid := local.Add(after.Sub(local) / 2)
	d.skew.Store(int64(db.Sub(mid)))
	d.syncedAt.Store(after.UnixNano())
}

func (d *dispatcher) deliverDue(name string, n Notifier) {
	d.busy.Add(1)
	defer d.busy.Add(-1)
	d.syncClock()
	for d.ctx.Err() == nil {
		now := d.now()
		items, err := d.outbox.DueOutbox(d.ctx, name, now, 20)
		if err != nil {
			d.quiet.warn("outbox "+name, "read notification outbox", "notifier", name, "err", err)
			return
		}
		d.quiet.ok("outbox "+name, "notification outbox readable again")
		if len(items) == 0 {
			return
		}
		if b, ok := d.outbox.(BatchOutbox); ok {
			if !d.deliverBatch(b, name, n, items, now) {
				return
			}
			continue
		}
		for _, it := range items {
			ok, err := d.outbox.ClaimOutbox(d.ctx, it.ID, now, now.Add(d.claimFor()))
			if err != nil || !ok {
				return // another daemon has it, or the store hiccuped: next poll
			}
			ctx, cancel := context.WithTimeout(d.ctx, d.callTimeout())
			err = n.Notify(ctx, it.Event)
			cancel()
			bg := context.WithoutCancel(d.ctx)
			if err == nil {
				d.metrics.notified(name, "ok")
				if merr := d.outbox.MarkDelivered(bg, it.ID, d.now()); merr != nil {
					d.log.Warn("mark notification delivered", "notifier", name, "err", merr)
				}
				continue
			}
			attempts := it.Attempts + 1
			if IsPermanent(err) || attempts >= maxDeliveries {
				d.metrics.notified(name, "failed")
				d.log.Error("notification failed; giving up", "notifier", name, "kind", it.Event.Kind, "key", it.Event.Key, "attempts", attempts, "err", err)
				_ = d.outbox.MarkRetry(bg, it.ID, attempts, d.now(), err.Error(), true)
				continue
			}
			delay := retryDelay(d.backoff, attempts, err)
			d.metrics.notified(name, "retry")
			d.log.Warn("notification failed; will retry", "notifier", name, "kind", it.Event.Kind, "attempt", attempts, "retry_in", delay.Round(time.Millisecond).String(), "err", err)
			_ = d.outbox.MarkRetry(bg, it.ID, attempts, d.now().Add(delay), err.Error(), false)
			return // keep order: nothing after it goes out first
		}
	}
}

func (d *dispatcher) memoryLoop(name string) {
	defer d.wg.Done()
	n := d.targets[name]
	for ev := range d.queues[name] {
		for attempt := 1; ; attempt++ {
			ctx, cancel := context.WithTimeout(d.ctx, 30*time.Second)
			err := n.Notify(ctx, ev)
			cancel()
			if err == nil {
				d.metrics.notified(name, "ok")
				break
			}
			if IsPermanent(err) || attempt >= memoryAttempts || d.ctx.Err() != nil {
				d.metrics.notified(name, "failed")
				d.log.Error("notification failed", "notifier", name, "kind", ev.Kind, "key", ev.Key, "attempts", attempt, "err", err)
				break
			}
			d.metrics.notified(name, "retry")
			select {
			case <-time.After(retryDelay(d.backoff, attempt, err)):
			case <-d.ctx.Done():
			}
		}
	}
}

// Notify sends an event that belongs to no rotation step (warnings from the
// scheduler): it is written to the outbox of every notifier of k at once.
func (e *Engine) Notify(k *Key, ev Event) {
	if err := e.record(context.Background(), k, nil, ev); err != nil {
		e.log.Error("notification could not be queued", "kind", ev.Kind, "key", ev.Key, "err", err)
	}
}

// record commits audit events and notifications that belong to no
// rotation, in one transaction.
func (e *Engine) record(ctx context.Context, k *Key, audit []AuditEvent, evs ...Event) error {
	for i := range evs {
		if evs[i].At.IsZero() {
			evs[i].At = e.clock.Now()
		}
		if evs[i].ID == "" {
			evs[i].ID = "ev_" + randomHex(8)
		}
	}
	c := Commit{Audit: audit, Outbox: e.dispatch.rows(k, evs)}
	if len(c.Audit) > 0 || len(c.Outbox) > 0 {
		if err := e.store.Save(context.WithoutCancel(ctx), c); err != nil {
			return err
		}
	}
	e.dispatch.committed(k, evs)
	return nil
}

// retryDelay is the backoff for attempt, or longer when the notifier's
// error says when to come back (Retry-After).
func retryDelay(b Backoff, attempt int, err error) time.Duration {
	delay := b.Delay(attempt)
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) && ra.RetryAfter() > delay {
		delay = ra.RetryAfter()
	}
	return delay
}
