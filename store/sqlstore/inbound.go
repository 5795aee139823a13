package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

const (
	qInboundInsert = `INSERT INTO inbound_events (id, kind, payload, received_at) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`
	qInboundRead   = `SELECT id, kind, payload, received_at, processed_at, result FROM inbound_events WHERE id = ?`
	qInboundFinish = `UPDATE inbound_events SET processed_at = ?, result = ? WHERE id = ?`
	qReplayRead    = `SELECT until FROM replay_guard WHERE namespace = ? AND id = ?`
	qReplayExpire  = `DELETE FROM replay_guard WHERE until < ?`
	qReplayInsert  = `INSERT INTO replay_guard (namespace, id, until) VALUES (?, ?, ?) ON CONFLICT (namespace, id) DO UPDATE SET until = excluded.until`
)

// RecordInbound inserts ev unless an event with its id exists, in which case
// it returns the stored one. Implements rotator.InboundStore.
func (s *Store) RecordInbound(ctx context.Context, ev rotator.InboundEvent) (bool, rotator.InboundEvent, error) {
	var inserted bool
	var stored rotator.InboundEvent
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := s.txExec(ctx, tx, qInboundInsert, clean(ev.ID), clean(ev.Kind), clean(ev.Payload), TimeText(ev.ReceivedAt))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 1 {
			inserted, stored = true, ev
			return nil
		}
		return s.txQueryRow(ctx, tx, qInboundRead, ev.ID).
			Scan(&stored.ID, &stored.Kind, &stored.Payload, timeCol{&stored.ReceivedAt}, timeCol{&stored.ProcessedAt}, &stored.Result)
	})
	if err != nil {
		return false, stored, s.errorf("record inbound event %s: %w", ev.ID, err)
	}
	return inserted, stored, nil
}

// PendingInbound lists events not processed yet, oldest first.
func (s *Store) PendingInbound(ctx context.Context, n int) ([]rotator.InboundEvent, error) {
	rows, err := s.query(ctx, qInboundPending+limit(n))
	if err != nil {
		return nil, s.errorf("pending inbound events: %w", err)
	}
	defer rows.Close()
	var out []rotator.InboundEvent
	for rows.Next() {
		var ev rotator.InboundEvent
		if err := rows.Scan(&ev.ID, &ev.Kind, &ev.Payload, timeCol{&ev.ReceivedAt}, timeCol{&ev.ProcessedAt}, &ev.Result); err != nil {
			return nil, s.errorf("pending inbound events: %w", err)
		}
		out = append(out, ev)
	}
	return out, rows.Err()
}

// FinishInbound marks an event processed with its result.
func (s *Store) FinishInbound(ctx context.Context, id string, at time.Time, result string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := s.txExec(ctx, tx, qInboundFinish, TimeText(at), clean(result), id)
		if err != nil {
			return s.errorf("finish inbound event %s: %w", id, err)
		}
		return nil
	})
}

// Seen records id in namespace until `until` and reports whether it was
// already recorded and not yet expired (a replay). Implements
// rotator.ReplayGuard.
func (s *Store) Seen(ctx context.Context, namespace, id string, until time.Time) (bool, error) {
	now := TimeText(time.Now())
	var replay bool
	err := s.write(ctx, func(tx *sql.Tx) error {
		var old string
		err := s.txQueryRow(ctx, tx, qReplayRead, namespace, id).Scan(&old)
		switch {
		case err == nil && old > now:
			replay = true
			return nil
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if _, err := s.txExec(ctx, tx, qReplayExpire, now); err != nil {
			return err
		}
		_, err = s.txExec(ctx, tx, qReplayInsert, clean(namespace), clean(id), TimeText(until))
		return err
	})
	if err != nil {
		return false, s.errorf("replay guard %s: %w", namespace, err)
	}
	return replay, nil
}

// ListState returns every entry of a namespace (rotator.StateLister).
func (s *Store) ListState(ctx context.Context, namespace string) (map[string]string, error) {
	rows, err := s.query(ctx, (`SELECT key, value FROM adapter_state WHERE namespace = ?`), namespace)
	if err != nil {
		return nil, s.errorf("list state %s: %w", namespace, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, rows.Err()
}

var (
	_ rotator.InboundStore = (*Store)(nil)
	_ rotator.ReplayGuard  = (*Store)(nil)
	_ rotator.StateLister  = (*Store)(nil)
)
