package rotator

import (
	"context"
	"time"
)

// deliverBatch delivers items (a notifier's due items, in order) through a
// BatchOutbox: one transaction claims them, one marks those delivered —
// at a burst of rotations the claim and the mark per notification cost more
// than the rotations' own commits. A crash between a delivery and its mark
// delivers it again once the claim expires, as with single items (notifiers
// de-duplicate by Event.ID). It reports whether the caller may read the
// next batch at once.
func (d *dispatcher) deliverBatch(b BatchOutbox, name string, n Notifier, items []OutboxItem, now time.Time) bool {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.ID
	}
	claimed, err := b.ClaimOutboxBatch(d.ctx, ids, now, now.Add(d.claimFor()))
	if err != nil || claimed == 0 {
		if err != nil {
			d.log.Warn("claim notifications", "notifier", name, "err", err)
		}
		return false // another daemon has them, or the store hiccuped: next poll
	}
	bg := context.WithoutCancel(d.ctx)
	var delivered []string
	mark := func() {
		if len(delivered) == 0 {
			return
		}
		if err := b.MarkDeliveredBatch(bg, delivered, d.clock.Now()); err != nil {
			d.log.Warn("mark notifications delivered", "notifier", name, "err", err)
		}
		delivered = nil
	}
	defer mark()
	for i, it := range items[:claimed] {
		ctx, cancel := context.WithTimeout(d.ctx, 30*time.Second)
		err := n.Notify(ctx, it.Event)
		cancel()
		if err == nil {
			d.metrics.notified(name, "ok")
			delivered = append(delivered, it.ID)
			continue
		}
		mark()
		attempts := it.Attempts + 1
		if IsPermanent(err) || attempts >= maxDeliveries {
			d.metrics.notified(name, "failed")
			d.log.Error("notification failed; giving up", "notifier", name, "kind", it.Event.Kind, "key", it.Event.Key, "attempts", attempts, "err", err)
			_ = d.outbox.MarkRetry(bg, it.ID, attempts, d.clock.Now(), err.Error(), true)
			continue
		}
		delay := retryDelay(d.backoff, attempts, err)
		d.metrics.notified(name, "retry")
		d.log.Warn("notification failed; will retry", "notifier", name, "kind", it.Event.Kind, "attempt", attempts, "retry_in", delay.Round(time.Millisecond).String(), "err", err)
		_ = d.outbox.MarkRetry(bg, it.ID, attempts, d.clock.Now().Add(delay), err.Error(), false)
		// Keep order: nothing after it goes out first. What this loop
		// claimed after it is due again at once, not after the claim.
		if rest := ids[i+1 : claimed]; len(rest) > 0 {
			if err := b.ReleaseOutbox(bg, rest, now); err != nil {
				d.log.Warn("release notifications", "notifier", name, "err", err)
			}
		}
		return false
	}
	return claimed == len(items) && d.ctx.Err() == nil
}
