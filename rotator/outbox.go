package rotator

import (
	"context"
	"time"
)

// OutboxItem is one event queued for one notifier.
type OutboxItem struct {
	ID       string
	Notifier string
	Event    Event
	Attempts int
}

// Outbox persists notifications so that a notifier outage or a restart
// loses none: events are written with the commit they describe
// (Commit.Outbox), delivered in order per notifier,
// and marked delivered once (a notifier must de-duplicate by Event.ID for
// the crash window between delivery and the mark).
type Outbox interface {
	// DueOutbox lists pending items of a notifier in enqueue order, up to
	// limit, whose next attempt is at or before now.
	DueOutbox(ctx context.Context, notifier string, now time.Time, limit int) ([]OutboxItem, error)
	// ClaimOutbox takes an item for delivery until `until` if it is still
	// due at now, so that two daemons do not deliver it both.
	ClaimOutbox(ctx context.Context, id string, now, until time.Time) (bool, error)
	MarkDelivered(ctx context.Context, id string, at time.Time) error
	// MarkRetry records a failed attempt; failed=true gives the item up.
	MarkRetry(ctx context.Context, id string, attempts int, next time.Time, lastError string, failed bool) error
}

// DatabaseClock is an optional Outbox capability: the database's current
// time. With Options.OutboxDatabaseClock, the dispatcher judges claims and
// retry times by it, so that daemons on hosts with skewed clocks neither
// take over each other's live claims nor hold each other's retries back.
type DatabaseClock interface {
	DatabaseNow(ctx context.Context) (time.Time, error)
}

// BatchOutbox is an optional Outbox capability: claim, mark and release
// several items of one notifier in one transaction each, instead of two
// transactions per notification.
type BatchOutbox interface {
	// ClaimOutboxBatch claims the items of ids, in order, that are still
	// due at now, until `until`; it stops at the first it cannot claim
	// (another daemon has it) and returns how many it claimed.
	ClaimOutboxBatch(ctx context.Context, ids []string, now, until time.Time) (int, error)
	MarkDeliveredBatch(ctx context.Context, ids []string, at time.Time) error
	// ReleaseOutbox makes the items of ids that are still claimed until
	// `claimedUntil` (the caller's claim: not another daemon's since) and
	// undelivered due again at `at`.
	ReleaseOutbox(ctx context.Context, ids []string, claimedUntil, at time.Time) error
}
