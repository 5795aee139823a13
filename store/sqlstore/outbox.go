package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// The queries over the tables that grow with use. Each is served by an
// index (TestGrowingTablesUseIndexes, on SQLite and PostgreSQL), so that
// its cost does not grow with the history the tables keep until retention
// prunes it.
const (
	qOutboxLast = `SELECT COALESCE(MAX(seq), 0) FROM outbox WHERE notifier = ?`
	// qOutboxDue: a notifier's due items in order, none behind one that
	// waits (a retry's backoff, another daemon's claim) in the same lane —
	// what follows a failed notification never overtakes it, across polls
	// and across daemons.
	qOutboxDue = `SELECT o.id, o.event, o.attempts FROM outbox o
		WHERE o.notifier = ? AND o.delivered_at = '' AND o.failed = 0 AND o.next_attempt_at <= ?
		AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.notifier = o.notifier AND p.lane = o.lane AND p.seq < o.seq
			AND p.delivered_at = '' AND p.failed = 0 AND p.next_attempt_at > ?)
		ORDER BY o.lane, o.seq`
	qOutboxClaim     = `UPDATE outbox SET next_attempt_at = ? WHERE id = ? AND delivered_at = '' AND failed = 0 AND next_attempt_at <= ?`
	qOutboxDelivered = `UPDATE outbox SET delivered_at = ? WHERE id = ?`
	qOutboxRelease   = `UPDATE outbox SET next_attempt_at = ? WHERE id = ? AND delivered_at = '' AND failed = 0 AND next_attempt_at = ?`
	qOutboxRetry     = `UPDATE outbox SET attempts = ?, next_attempt_at = ?, last_error = ?, failed = ? WHERE id = ?`
	qOutboxBacklog   = `SELECT COUNT(*), MIN(created_at) FROM outbox WHERE delivered_at = '' AND failed = 0`
	qPruneDelivered  = `DELETE FROM outbox WHERE delivered_at <> '' AND delivered_at < ?`
	qPruneFailed     = `DELETE FROM outbox WHERE failed = 1 AND next_attempt_at < ?`
	qPruneInbound    = `DELETE FROM inbound_events WHERE processed_at <> '' AND processed_at < ?`
	qInboundPending  = `SELECT id, kind, payload, received_at, processed_at, result FROM inbound_events WHERE processed_at = '' ORDER BY received_at, id`
)

// NamedQuery is a query with sample arguments, for plan checks.
type NamedQuery struct {
	Name string
	SQL  string // with ? placeholders (Rebind for the dialect)
	Args []any
}

// GrowingTables are the tables whose rows accumulate with history: the
// queries of GrowingTableQueries must never scan them.
var GrowingTables = []string{"outbox", "inbound_events", "replay_guard", "credentials", "rotations", "audit_events"}

// GrowingTableQueries returns every query over the outbox and the inbound
// events, and the read of the counters (Totals), as the store runs them,
// with sample arguments: tests check with the database's EXPLAIN that an
// index serves each one.
func GrowingTableQueries() []NamedQuery {
	t := TimeText(time.Now())
	return []NamedQuery{
		{"outbox last seq", qOutboxLast, []any{"log"}},
		{"outbox insert", insertOutbox[2], []any{"log/a", "log", 1, 0, "{}", t, t, "log/b", "log", 2, 1, "{}", t, t}},
		{"outbox due", qOutboxDue + limit(16), []any{"log", t, t}},
		{"outbox claim", qOutboxClaim, []any{t, "log/a", t}},
		{"outbox delivered", qOutboxDelivered, []any{t, "log/a"}},
		{"outbox release", qOutboxRelease, []any{t, "log/a", t}},
		{"outbox retry", qOutboxRetry, []any{1, t, "err", 0, "log/a"}},
		{"outbox backlog", qOutboxBacklog, nil},
		{"prune delivered", qPruneDelivered, []any{t}},
		{"prune failed", qPruneFailed, []any{t}},
		{"prune inbound", qPruneInbound, []any{t}},
		{"inbound pending", qInboundPending + limit(100), nil},
		{"inbound record", qInboundInsert, []any{"ev-1", "exposure", "{}", t}},
		{"inbound read", qInboundRead, []any{"ev-1"}},
		{"inbound finish", qInboundFinish, []any{t, "{}", "ev-1"}},
		{"replay read", qReplayRead, []any{"exposure", "msg-1"}},
		{"replay expire", qReplayExpire, []any{t}},
		{"replay insert", qReplayInsert, []any{"exposure", "msg-1", t}},
		{"totals", qTotals, nil},
		{"key states: previous credentials", qPreviousCredentials, nil},
	}
}

// enqueue writes outbox rows inside a commit, each after the last of its
// notifier's queue (the (notifier, seq) index serves the MAX look-up, once
// per notifier), in multi-row INSERTs.
func (s *Store) enqueue(ctx context.Context, tx *sql.Tx, rows []rotator.Notification) error {
	if len(rows) == 0 {
		return nil
	}
	next := map[string]int64{}
	args := make([]any, 0, 7*min(len(rows), maxRowsPerInsert))
	n := 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		if _, err := s.txExec(ctx, tx, insertOutbox[n], args...); err != nil {
			return fmt.Errorf("outbox: enqueue: %w", err)
		}
		args, n = args[:0], 0
		return nil
	}
	for _, r := range rows {
		b, err := json.Marshal(r.Event)
		if err != nil {
			return fmt.Errorf("outbox: encode event: %w", err)
		}
		seq, ok := next[r.Notifier]
		if !ok {
			if err := s.txQueryRow(ctx, tx, qOutboxLast, r.Notifier).Scan(&seq); err != nil {
				return fmt.Errorf("outbox: %w", err)
			}
		}
		seq++
		next[r.Notifier] = seq
		// Due at once (next_attempt_at '' sorts before every time), on
		// whichever daemon's clock reads it: a row enqueued by a host whose
		// clock runs ahead is not held back by the difference.
		created := TimeText(time.Now())
		if !r.Event.At.IsZero() {
			created = TimeText(r.Event.At)
		}
		args = append(args, clean(r.Notifier+"/"+r.Event.ID), clean(r.Notifier), seq, r.Lane, clean(string(b)), created, "")
		if n++; n == maxRowsPerInsert {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

var insertOutbox = multiRowInsert(`INSERT INTO outbox (id, notifier, seq, lane, event, created_at, next_attempt_at) VALUES `, 7,
	` ON CONFLICT (id) DO NOTHING`)

// DatabaseNow is the database's current time (rotator.DatabaseClock), in
// the store's timestamp layout.
func (s *Store) DatabaseNow(ctx context.Context) (time.Time, error) {
	var v string
	if err := s.queryRow(ctx, `SELECT `+s.d.NowPlus, 0).Scan(&v); err != nil {
		return time.Time{}, s.errorf("database clock: %w", err)
	}
	t, ok := parseTimeText(v)
	if !ok {
		return time.Time{}, s.errorf("database clock: unexpected time %q", v)
	}
	return t, nil
}

// DueOutbox lists a notifier's pending items in order.
func (s *Store) DueOutbox(ctx context.Context, notifier string, now time.Time, n int) ([]rotator.OutboxItem, error) {
	rows, err := s.query(ctx, qOutboxDue+limit(n), notifier, TimeText(now), TimeText(now))
	if err != nil {
		return nil, s.errorf("outbox: due: %w", err)
	}
	defer rows.Close()
	var out []rotator.OutboxItem
	for rows.Next() {
		var it rotator.OutboxItem
		var ev string
		if err := rows.Scan(&it.ID, &ev, &it.Attempts); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(ev), &it.Event); err != nil {
			return nil, s.errorf("outbox: decode %s: %w", it.ID, err)
		}
		it.Notifier = notifier
		out = append(out, it)
	}
	return out, rows.Err()
}

// ClaimOutbox claims an item that is still due.
func (s *Store) ClaimOutbox(ctx context.Context, id string, now, until time.Time) (bool, error) {
	var ok bool
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := s.txExec(ctx, tx, qOutboxClaim, TimeText(until), id, TimeText(now))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		ok = n == 1
		return err
	})
	return ok, err
}

// ClaimOutboxBatch claims the items of ids in order, in one transaction,
// and stops at the first that is no longer due. Implements
// rotator.BatchOutbox.
func (s *Store) ClaimOutboxBatch(ctx context.Context, ids []string, now, until time.Time) (int, error) {
	var claimed int
	err := s.write(ctx, func(tx *sql.Tx) error {
		claimed = 0
		for _, id := range ids {
			res, err := s.txExec(ctx, tx, qOutboxClaim, TimeText(until), id, TimeText(now))
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n != 1 {
				return err
			}
			claimed++
		}
		return nil
	})
	if err != nil {
		return 0, s.errorf("outbox: claim: %w", err)
	}
	return claimed, nil
}

// MarkDeliveredBatch records the delivery of ids in one transaction.
func (s *Store) MarkDeliveredBatch(ctx context.Context, ids []string, at time.Time) error {
	return s.updateEach(ctx, qOutboxDelivered, ids, TimeText(at))
}

// ReleaseOutbox makes the items of ids still claimed until claimedUntil
// (next_attempt_at is the claim's expiry: a row another daemon claimed
// since carries its own) and undelivered due again at `at`.
func (s *Store) ReleaseOutbox(ctx context.Context, ids []string, claimedUntil, at time.Time) error {
	return s.updateEach(ctx, qOutboxRelease, ids, TimeText(at), TimeText(claimedUntil))
}

// updateEach runs query (arguments: value, id, then more) for every id in
// one transaction.
func (s *Store) updateEach(ctx context.Context, query string, ids []string, value string, more ...any) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		for _, id := range ids {
			if _, err := s.txExec(ctx, tx, query, append([]any{value, id}, more...)...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return s.errorf("outbox: %w", err)
	}
	return nil
}

// MarkDelivered records a delivery.
func (s *Store) MarkDelivered(ctx context.Context, id string, at time.Time) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := s.txExec(ctx, tx, qOutboxDelivered, TimeText(at), id)
		return err
	})
}

// MarkRetry records a failed attempt.
func (s *Store) MarkRetry(ctx context.Context, id string, attempts int, next time.Time, lastError string, failed bool) error {
	f := 0
	if failed {
		f = 1
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := s.txExec(ctx, tx, qOutboxRetry, attempts, TimeText(next), clean(lastError), f, id)
		return err
	})
}

// Prune deletes outbox rows delivered (or given up) before outboxBefore
// and inbound events processed before inboundBefore. The audit trail is
// never pruned. Implements rotator.Pruner.
func (s *Store) Prune(ctx context.Context, outboxBefore, inboundBefore time.Time) (int64, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		n = 0
		for _, q := range []struct {
			sql    string
			before time.Time
		}{
			{qPruneDelivered, outboxBefore},
			{qPruneFailed, outboxBefore},
			{qPruneInbound, inboundBefore},
		} {
			if q.before.IsZero() {
				continue
			}
			res, err := s.txExec(ctx, tx, q.sql, TimeText(q.before))
			if err != nil {
				return fmt.Errorf("prune: %w", err)
			}
			k, _ := res.RowsAffected()
			n += k
		}
		return nil
	})
	if err != nil {
		return 0, s.errorf("%w", err)
	}
	return n, nil
}

// OutboxBacklog counts undelivered notifications and finds the oldest.
// Implements rotator.OutboxStats.
func (s *Store) OutboxBacklog(ctx context.Context) (int, time.Time, error) {
	var n int
	var oldest sql.NullString
	err := s.queryRow(ctx, qOutboxBacklog).Scan(&n, &oldest)
	if err != nil {
		return 0, time.Time{}, s.errorf("outbox backlog: %w", err)
	}
	var t time.Time
	if oldest.Valid {
		t, _ = parseTimeText(oldest.String)
	}
	return n, t, nil
}

var (
	_ rotator.OutboxStats = (*Store)(nil)
	_ rotator.Outbox      = (*Store)(nil)
	_ rotator.Pruner      = (*Store)(nil)
	_ rotator.BatchOutbox = (*Store)(nil)
)
