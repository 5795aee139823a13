package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// RecordConsumer upserts what a consumer attested (first_seen is kept),
// forgets the key's consumers last seen before forgetBefore, and refuses a
// new consumer once the key has maxPerKey (rotator.ErrTooManyConsumers).
// Implements rotator.ConsumerStore.
func (s *Store) RecordConsumer(ctx context.Context, c rotator.ConsumerSeen, forgetBefore time.Time, maxPerKey int) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		if !forgetBefore.IsZero() {
			if _, err := s.txExec(ctx, tx, `DELETE FROM consumers WHERE key_name = ? AND last_seen < ?`, clean(c.Key), TimeText(forgetBefore)); err != nil {
				return err
			}
		}
		var known, n int
		if err := s.txQueryRow(ctx, tx, `SELECT COUNT(*) FROM consumers WHERE key_name = ? AND name = ?`, clean(c.Key), clean(c.Name)).Scan(&known); err != nil {
			return err
		}
		if known == 0 && maxPerKey > 0 {
			if err := s.txQueryRow(ctx, tx, `SELECT COUNT(*) FROM consumers WHERE key_name = ?`, clean(c.Key)).Scan(&n); err != nil {
				return err
			}
			if n >= maxPerKey {
				return fmt.Errorf("%w: %s has %d", rotator.ErrTooManyConsumers, c.Key, n)
			}
		}
		_, err := s.txExec(ctx, tx, `INSERT INTO consumers (key_name, name, generation, via, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (key_name, name) DO UPDATE SET generation = excluded.generation, via = excluded.via, last_seen = excluded.last_seen`,
			clean(c.Key), clean(c.Name), c.Generation, clean(c.Via), TimeText(c.LastSeen), TimeText(c.LastSeen))
		return err
	})
	if err != nil {
		return s.errorf("record consumer %s of %s: %w", c.Name, c.Key, err)
	}
	return nil
}

// Consumers lists the key's consumers, most recently seen first.
// Implements rotator.ConsumerStore.
func (s *Store) Consumers(ctx context.Context, key string) ([]rotator.ConsumerSeen, error) {
	rows, err := s.query(ctx, `SELECT key_name, name, generation, via, first_seen, last_seen FROM consumers
		WHERE key_name = ? ORDER BY last_seen DESC, name`, key)
	if err != nil {
		return nil, s.errorf("consumers of %s: %w", key, err)
	}
	defer rows.Close()
	var out []rotator.ConsumerSeen
	for rows.Next() {
		var c rotator.ConsumerSeen
		if err := rows.Scan(&c.Key, &c.Name, &c.Generation, &c.Via, timeCol{&c.FirstSeen}, timeCol{&c.LastSeen}); err != nil {
			return nil, s.errorf("consumers of %s: %w", key, err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

var _ rotator.ConsumerStore = (*Store)(nil)
