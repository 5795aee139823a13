package rotator

import (
	"context"
	"time"
)

// deliverBatch delivers items (a notifier's due items, in order) through a
// BatchOutbox: one transaction claims them all — at a burst of rotations a
// claim per notification costs more than the rotations' own commits. The
// claim lasts one call and a TTL (claimFor), as a single item's does, so
// that a dead daemon's claims are taken over as fast as its rotations; the
// batch therefore starts a call only while the claim outlasts it (until −
// callTimeout not yet passed), releases the rest when it does not, and
// marks each item delivered as soon as its call succeeded: another daemon
// can claim an item only once its claim ran out, and by then the item was
// either sent and marked or not sent at all. A crash between a delivery and
// its mark delivers it again once the claim expires, as with single items
// (notifiers de-duplicate by Event.ID). It reports whether the caller may
// read the next batch at once.
func (d *dispatcher) deliverBatch(b BatchOutbox, name string, n Notifier, items []OutboxItem, now time.Time) bool {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.ID
	}
	until := now.Add(d.claimFor())
	claimed, err := b.ClaimOutboxBatch(d.ctx, ids, now, until)
	if err != nil || claimed == 0 {
		if err != nil {
			d.log.Warn("claim notifications", "notifier", name, "err", err)
		}
		return false // another daemon has them, or the store hiccuped: next poll
	}
	bg := context.WithoutCancel(d.ctx)
	call := d.callTimeout()
	// release makes what this batch claimed from i on due again at once,
	// unless another daemon claimed it since.
	release := func(i int) {
		if rest := ids[i:claimed]; len(rest) > 0 {
			if err := b.ReleaseOutbox(bg, rest, until, d.now()); err != nil {
				d.log.Warn("release notifications", "notifier", name, "err", err)
			}
		}
	}
	for i, it := range items[:claimed] {
		if d.now().Add(call).After(until) {
			// The call could outlast the claim: another daemon could claim
			// the item meanwhile and send it too. Claim the rest afresh.
			release(i)
			return d.ctx.Err() == nil
		}
		ctx, cancel := context.WithTimeout(d.ctx, call)
		err := n.Notify(ctx, it.Event)
		cancel()
		if err == nil {
			d.metrics.notified(name, "ok")
			if err := b.MarkDeliveredBatch(bg, ids[i:i+1], d.now()); err != nil {
				d.log.Warn("mark notification delivered", "notifier", name, "err", err)
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
		// Keep order: nothing after it goes out first. What this loop
		// claimed after it is due again at once, not after the claim.
		release(i + 1)
		return false
	}
	return claimed == len(items) && d.ctx.Err() == nil
}
