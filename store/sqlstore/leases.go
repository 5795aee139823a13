package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// Rotation leases (rotator.Lease). Expiry is judged by the database's clock
// (Dialect.NowPlus): lease_until is written and compared as the database's
// time, so daemons on hosts with skewed clocks agree. lease_epoch grows with
// every claim; fenced commits (Save with Commit.Lease) check it.

// Claim leases rotationID to owner for ttl when it is free, its lease ran
// out, or owner holds it already; every claim increments the epoch, so a
// claim also fences an earlier claim of the same owner. An unknown rotation
// is an error wrapping rotator.ErrNotFound.
func (s *Store) Claim(ctx context.Context, rotationID, owner string, ttl time.Duration) (rotator.Lease, bool, error) {
	if owner == "" {
		return rotator.Lease{}, false, s.errorf("lease rotation %s: an owner is required", rotationID)
	}
	var epoch int64
	// In a write transaction, so that it queues on the in-process write
	// lock (see exec) instead of in SQLite's busy handler.
	err := s.write(ctx, func(tx *sql.Tx) error {
		return s.txQueryRow(ctx, tx, `UPDATE rotations SET lease_owner = ?, lease_until = `+s.d.NowPlus+`, lease_epoch = lease_epoch + 1
		WHERE id = ? AND (lease_owner = '' OR lease_owner = ? OR lease_until <= `+s.d.NowPlus+`)
		RETURNING lease_epoch`, owner, ttl.Milliseconds(), rotationID, owner, 0).Scan(&epoch)
	})
	switch {
	case err == nil:
		return rotator.Lease{RotationID: rotationID, Owner: owner, Epoch: epoch}, true, nil
	case !errors.Is(err, sql.ErrNoRows):
		return rotator.Lease{}, false, s.errorf("lease rotation %s: %w", rotationID, err)
	}
	var one int
	err = s.queryRow(ctx, `SELECT 1 FROM rotations WHERE id = ?`, rotationID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return rotator.Lease{}, false, s.errorf("lease rotation %s: %w", rotationID, rotator.ErrNotFound)
	}
	if err != nil {
		return rotator.Lease{}, false, s.errorf("lease rotation %s: %w", rotationID, err)
	}
	return rotator.Lease{}, false, nil
}

// Renew extends l to ttl from the database's now while l is still the
// rotation's lease (same owner and epoch). A lease that ran out but that
// nobody claimed since is still l: renewing it is safe.
func (s *Store) Renew(ctx context.Context, rotationID string, l rotator.Lease, ttl time.Duration) (bool, error) {
	res, err := s.exec(ctx, `UPDATE rotations SET lease_until = `+s.d.NowPlus+`
		WHERE id = ? AND lease_owner = ? AND lease_epoch = ?`, ttl.Milliseconds(), rotationID, l.Owner, l.Epoch)
	if err != nil {
		return false, s.errorf("renew lease of rotation %s: %w", rotationID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, s.errorf("renew lease of rotation %s: %w", rotationID, err)
	}
	return n == 1, nil
}

// Release drops l; a no-op when l no longer holds the rotation.
func (s *Store) Release(ctx context.Context, rotationID string, l rotator.Lease) error {
	if _, err := s.exec(ctx, `UPDATE rotations SET lease_owner = '', lease_until = ''
		WHERE id = ? AND lease_owner = ? AND lease_epoch = ?`, rotationID, l.Owner, l.Epoch); err != nil {
		return s.errorf("release rotation %s: %w", rotationID, err)
	}
	return nil
}
