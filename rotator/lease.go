package rotator

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Lease is one daemon process's claim on a rotation. The store judges its
// expiry by the database's clock, never a daemon's, so clock skew between
// hosts moves nothing. Every new claim gets a greater Epoch; a commit made
// under a lease carries it (Commit.Lease) and fails with ErrLeaseLost once
// another claim replaced it — the fencing token that stops a daemon which
// lost its lease (paused, partitioned) before its next side effect.
type Lease struct {
	// RotationID is the rotation the lease is on: a commit that writes no
	// rotation (credentials only) is fenced by this rotation's lease.
	RotationID string
	Owner      string
	Epoch      int64
}

// ErrLeaseLost is returned by a fenced commit whose lease was taken over or
// ran out. It is a conflict: the rotation is read again, by whoever holds it.
var ErrLeaseLost = fmt.Errorf("%w: the rotation's lease was lost", ErrConflict)

// DefaultLeaseTTL is how long a lease outlives its holder's last heartbeat:
// a rotation whose daemon dies is taken over by another within the TTL plus
// one poll interval.
const DefaultLeaseTTL = 15 * time.Second

// holder keeps one rotation's lease while this process works on it: a
// heartbeat renews it every ttl/3, and ctx is cancelled as soon as the lease
// is lost or can no longer be proven held — no renewal confirmed within the
// TTL, measured on this process's monotonic clock from the moment the last
// successful renewal was sent, which is never later than the database's
// expiry. A step in flight then stops before its next side effect, and the
// interpreter's next commit is fenced by the epoch anyway.
type holder struct {
	e     *Engine
	id    string
	lease Lease
	ctx   context.Context
	stop  context.CancelFunc
	lost  atomic.Bool
	done  chan struct{}
	once  sync.Once
	then  func() // run after release, when set
}

// hold claims rotation id for this process; ok is false when another
// process holds it.
func (e *Engine) hold(ctx context.Context, id string) (h *holder, ok bool, err error) {
	sent := time.Now()
	l, ok, err := e.store.Claim(ctx, id, e.owner, e.ttl)
	if err != nil || !ok {
		return nil, false, err
	}
	hctx, stop := context.WithCancel(ctx)
	h = &holder{e: e, id: id, lease: l, ctx: hctx, stop: stop, done: make(chan struct{})}
	e.metrics.leaseHeld(1)
	go h.heartbeat(sent.Add(e.ttl))
	return h, true, nil
}

// held reports whether the lease is still this process's.
func (h *holder) held() bool { return !h.lost.Load() && h.ctx.Err() == nil }

func (h *holder) heartbeat(validUntil time.Time) {
	defer close(h.done)
	every := h.e.ttl / 3
	wait := every
	for {
		t := time.NewTimer(min(wait, time.Until(validUntil)))
		select {
		case <-h.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if !time.Now().Before(validUntil) {
			h.lose("no renewal confirmed within the lease TTL")
			return
		}
		sent := time.Now()
		rctx, cancel := context.WithDeadline(context.WithoutCancel(h.ctx), validUntil)
		ok, err := h.e.store.Renew(rctx, h.id, h.lease, h.e.ttl)
		cancel()
		switch {
		case err != nil:
			h.e.logs.warn("lease renew", "renew rotation lease", "rotation", h.id, "err", err)
			wait = max(every/3, 10*time.Millisecond) // try again soon, before it runs out
		case !ok:
			h.lose("another daemon took it over")
			return
		default:
			validUntil, wait = sent.Add(h.e.ttl), every
		}
	}
}

func (h *holder) lose(why string) {
	if h.lost.Swap(true) {
		return // the heartbeat and a fenced commit may both find it lost
	}
	h.e.metrics.leaseLost()
	h.e.log.Warn("rotation lease lost: the step in flight stops before its next side effect", "rotation", h.id,
		"owner", h.lease.Owner, "epoch", h.lease.Epoch, "why", why)
	h.stop()
}

// release stops the heartbeat and, unless drop is false (a finished
// rotation needs no write), gives the lease back.
func (h *holder) release(drop bool) {
	h.once.Do(func() {
		h.stop()
		<-h.done
		h.e.metrics.leaseHeld(-1)
		if drop && !h.lost.Load() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := h.e.store.Release(ctx, h.id, h.lease); err != nil {
				h.e.logs.warn("lease release", "release rotation lease", "rotation", h.id, "err", err)
			}
		}
		if h.then != nil {
			h.then()
		}
	})
}
