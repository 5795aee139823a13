package rotator

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"
)

// dispatcher delivers events to notifiers off the rotation path: one queue
// and goroutine per notifier, retries with backoff for retryable errors. A
// full queue drops the oldest-arriving event with an error log rather than
// block a rotation.
type dispatcher struct {
	log     *slog.Logger
	metrics *Metrics
	queues  map[string]chan Event
	targets map[string]Notifier
	names   []string
	backoff Backoff
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	once    sync.Once
	mu      sync.RWMutex
	closed  bool
}

const queueSize = 1024

func newDispatcher(ns map[string]Notifier, log *slog.Logger, m *Metrics) *dispatcher {
	d := &dispatcher{log: log, metrics: m, queues: map[string]chan Event{}, targets: ns,
		backoff: Backoff{Base: time.Second, Max: 30 * time.Second, Factor: 2, Jitter: 0.2}}
	for name := range ns {
		d.queues[name] = make(chan Event, queueSize)
		d.names = append(d.names, name)
	}
	sort.Strings(d.names)
	d.ctx, d.cancel = context.WithCancel(context.Background())
	return d
}

func (d *dispatcher) start() {
	d.once.Do(func() {
		for _, name := range d.names {
			d.wg.Add(1)
			go d.loop(name)
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

// send enqueues ev for the key's notifiers (all when the key names none).
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
		q, ok := d.queues[n]
		if !ok {
			continue
		}
		select {
		case q <- ev:
		default:
			d.metrics.notified(n, "dropped")
			d.log.Error("notification queue full; event dropped", "notifier", n, "kind", ev.Kind, "key", ev.Key)
		}
	}
}

func (d *dispatcher) loop(name string) {
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
			if IsPermanent(err) || attempt >= 8 || d.ctx.Err() != nil {
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
