package rotator

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"sync"
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
}

const (
	queueSize       = 1024
	maxDeliveries   = 100 // durable: with the 5-minute cap, about eight hours of outage
	memoryAttempts  = 8
	claimFor        = 2 * time.Minute
	outboxPollEvery = time.Second
)

func newDispatcher(ns map[string]Notifier, outbox Outbox, deliver bool, clock Clock, log *slog.Logger, m *Metrics) *dispatcher {
	d := &dispatcher{log: log, metrics: m, outbox: outbox, deliver: deliver, targets: ns, clock: clock,
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
				items, err := d.outbox.DueOutbox(context.Background(), name, d.clock.Now(), 1)
				if err != nil || len(items) == 0 {
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

// send queues ev for the key's notifiers (all when the key names none).
func (d *dispatcher) send(k *Key, ev Event) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		d.log.Warn("notification after shutdown dropped", "kind", ev.Kind, "key", ev.Key)
		return
	}
	names := d.names
	if k != nil && len(k.Notifiers) > 0 {
		names = k.Notifiers
	}
	for _, n := range names {
		if _, ok := d.targets[n]; !ok {
			continue
		}
		if d.outbox != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := d.outbox.Enqueue(ctx, n, ev)
			cancel()
			if err != nil {
				d.metrics.notified(n, "dropped")
				d.log.Error("notification could not be queued", "notifier", n, "kind", ev.Kind, "key", ev.Key, "err", err)
				continue
			}
			d.poke(n)
			continue
		}
		select {
		case d.queues[n] <- ev:
		default:
			d.metrics.notified(n, "dropped")
			d.log.Error("notification queue full; event dropped", "notifier", n, "kind", ev.Kind, "key", ev.Key)
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

func (d *dispatcher) deliverDue(name string, n Notifier) {
	for d.ctx.Err() == nil {
		now := d.clock.Now()
		items, err := d.outbox.DueOutbox(d.ctx, name, now, 20)
		if err != nil {
			d.log.Warn("read notification outbox", "notifier", name, "err", err)
			return
		}
		if len(items) == 0 {
			return
		}
		for _, it := range items {
			ok, err := d.outbox.ClaimOutbox(d.ctx, it.ID, now, now.Add(claimFor))
			if err != nil || !ok {
				return // another daemon has it, or the store hiccuped: next poll
			}
			ctx, cancel := context.WithTimeout(d.ctx, 30*time.Second)
			err = n.Notify(ctx, it.Event)
			cancel()
			bg := context.WithoutCancel(d.ctx)
			if err == nil {
				d.metrics.notified(name, "ok")
				if merr := d.outbox.MarkDelivered(bg, it.ID, d.clock.Now()); merr != nil {
					d.log.Warn("mark notification delivered", "notifier", name, "err", merr)
				}
				continue
			}
			attempts := it.Attempts + 1
			if IsPermanent(err) || attempts >= maxDeliveries {
				d.metrics.notified(name, "failed")
				d.log.Error("notification failed; giving up", "notifier", name, "kind", it.Event.Kind, "key", it.Event.Key, "attempts", attempts, "err", err)
				_ = d.outbox.MarkRetry(bg, it.ID, attempts, d.clock.Now(), err.Error(), true)
				continue
			}
			delay := d.backoff.Delay(attempts)
			var ra interface{ RetryAfter() time.Duration }
			if errors.As(err, &ra) && ra.RetryAfter() > delay {
				delay = ra.RetryAfter()
			}
			d.metrics.notified(name, "retry")
			d.log.Warn("notification failed; will retry", "notifier", name, "kind", it.Event.Kind, "attempt", attempts, "retry_in", delay.Round(time.Millisecond).String(), "err", err)
			_ = d.outbox.MarkRetry(bg, it.ID, attempts, d.clock.Now().Add(delay), err.Error(), false)
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
			case <-time.After(d.backoff.Delay(attempt)):
			case <-d.ctx.Done():
			}
		}
	}
}

// Notify sends an event that belongs to no rotation step (warnings from the
// scheduler, reports of unknown exposures).
func (e *Engine) Notify(k *Key, ev Event) {
	if ev.At.IsZero() {
		ev.At = e.clock.Now()
	}
	if ev.ID == "" {
		ev.ID = "ev_" + randomHex(8)
	}
	e.dispatch.send(k, ev)
}
