package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// rotationColumns are read by scanRotation, in this order.
const rotationColumns = `id, key, trigger_kind, actor, reason, mode, phase, hold, hold_detail,
	attempts, next_attempt_at, last_error, error_reason,
	old_generation, new_generation, target_generation, drain_state, watch_state,
	outcome, rollback_to, request, contain, held_since, lifecycle, created_at, updated_at, phase_started_at, finished_at, version, waiting`

// rotationFields are the mutable columns Save writes, in rotationValues order
// after id, key and created_at.
var rotationFields = []string{"trigger_kind", "actor", "reason", "mode", "phase", "hold", "hold_detail",
	"attempts", "next_attempt_at", "last_error", "error_reason",
	"old_generation", "new_generation", "target_generation", "drain_state", "watch_state",
	"outcome", "rollback_to", "request", "contain", "held_since", "lifecycle", "updated_at", "phase_started_at", "finished_at", "finished", "waiting"}

var (
	insertRotation = `INSERT INTO rotations (id, key, created_at, ` + strings.Join(rotationFields, ", ") + `, version)
		VALUES (?, ?, ?` + strings.Repeat(", ?", len(rotationFields)) + `, ?)`
	updateRotation = `UPDATE rotations SET ` + strings.Join(rotationFields, " = ?, ") + ` = ?, version = version + 1
		WHERE id = ? AND version = ?`
)

// rotationValues returns the values of rotationFields.
func rotationValues(r *rotator.Rotation) ([]any, error) {
	drain := r.Drain
	drain.StartedAt, drain.QuietSince = drain.StartedAt.UTC(), drain.QuietSince.UTC()
	drainJSON, err := json.Marshal(drain)
	if err != nil {
		return nil, fmt.Errorf("encode drain state: %w", err)
	}
	watch := r.Watch
	watch.StartedAt = watch.StartedAt.UTC()
	watchJSON, err := json.Marshal(watch)
	if err != nil {
		return nil, fmt.Errorf("encode watch state: %w", err)
	}
	req := r.Request
	req.At = req.At.UTC()
	reqJSON, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	finished := 0
	if r.Phase.Terminal() {
		finished = 1
	}
	waiting := ""
	if r.Waiting != nil {
		w := *r.Waiting
		w.Since, w.NextCheck, w.Deadline = w.Since.UTC(), w.NextCheck.UTC(), w.Deadline.UTC()
		b, err := json.Marshal(w)
		if err != nil {
			return nil, fmt.Errorf("encode waiting state: %w", err)
		}
		waiting = string(b)
	}
	return []any{
		clean(string(r.Trigger)), clean(r.Actor), clean(r.Reason), clean(string(r.Mode)), clean(string(r.Phase)),
		clean(string(r.Hold)), clean(r.HoldDetail),
		r.Attempts, TimeText(r.NextAttemptAt), clean(r.LastError), clean(string(r.ErrorReason)),
		r.OldGeneration, r.NewGeneration, r.TargetGeneration, string(drainJSON), string(watchJSON),
		clean(r.Outcome), clean(string(r.RollbackTo)), clean(string(reqJSON)), clean(r.Contain), TimeText(r.HeldSince), clean(r.Lifecycle), TimeText(r.UpdatedAt), TimeText(r.PhaseStartedAt), TimeText(r.FinishedAt), finished, clean(waiting),
	}, nil
}

func scanRotation(sc scanner) (*rotator.Rotation, error) {
	var (
		r                          rotator.Rotation
		drain, watch, req, waiting string
	)
	err := sc.Scan(&r.ID, &r.Key, &r.Trigger, &r.Actor, &r.Reason, &r.Mode, &r.Phase, &r.Hold, &r.HoldDetail,
		&r.Attempts, timeCol{&r.NextAttemptAt}, &r.LastError, &r.ErrorReason,
		&r.OldGeneration, &r.NewGeneration, &r.TargetGeneration, &drain, &watch,
		&r.Outcome, &r.RollbackTo, &req, &r.Contain, timeCol{&r.HeldSince}, &r.Lifecycle, timeCol{&r.CreatedAt}, timeCol{&r.UpdatedAt}, timeCol{&r.PhaseStartedAt}, timeCol{&r.FinishedAt}, &r.Version, &waiting)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(drain), &r.Drain); err != nil {
		return nil, fmt.Errorf("rotation %s: decode drain state: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(watch), &r.Watch); err != nil {
		return nil, fmt.Errorf("rotation %s: decode watch state: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(req), &r.Request); err != nil {
		return nil, fmt.Errorf("rotation %s: decode request: %w", r.ID, err)
	}
	if waiting != "" {
		r.Waiting = new(rotator.Waiting)
		if err := json.Unmarshal([]byte(waiting), r.Waiting); err != nil {
			return nil, fmt.Errorf("rotation %s: decode waiting state: %w", r.ID, err)
		}
	}
	return &r, nil
}

// CreateRotation inserts c.Rotation, upserts c.Credentials and appends
// c.Audit in one transaction. A second active rotation for the same key
// fails with an error wrapping rotator.ErrActiveRotation; a reused rotation
// id, or (with c.BasedOn) a key whose current credential is no longer the
// one the caller read, with rotator.ErrConflict.
func (s *Store) CreateRotation(ctx context.Context, c rotator.Commit) error {
	r := c.Rotation
	if r == nil || r.ID == "" || r.Key == "" {
		return s.errorf("create rotation: a rotation with an id and a key is required")
	}
	vals, err := rotationValues(r)
	if err != nil {
		return s.errorf("create rotation %s: %w", r.ID, err)
	}
	args := append([]any{clean(r.ID), clean(r.Key), TimeText(r.CreatedAt)}, vals...)
	args = append(args, r.Version)
	var appended []rotator.AuditEvent
	violation, moved := false, false
	err = s.write(ctx, func(tx *sql.Tx) error {
		head, err := s.lockHead(ctx, tx)
		if err != nil {
			return err
		}
		// The rotation starts from the key's current credential as the
		// caller read it; under the audit-head lock every other commit is
		// either before or after this check, so a rotation that finished
		// in between (on another daemon) is seen here.
		if c.BasedOn != nil {
			var cur int
			if err := s.txQueryRow(ctx, tx, `SELECT COALESCE(MAX(generation), 0) FROM credentials WHERE key = ? AND state = 'current'`, r.Key).Scan(&cur); err != nil {
				return fmt.Errorf("read current credential: %w", err)
			}
			if cur != *c.BasedOn {
				moved = true
				return fmt.Errorf("%w: the current credential of %s is generation %d, the rotation was built on %d", rotator.ErrConflict, r.Key, cur, *c.BasedOn)
			}
		}
		if _, err := s.txExec(ctx, tx, (insertRotation), args...); err != nil {
			if s.d.IsUniqueViolation(err) {
				violation = true
			}
			return fmt.Errorf("insert: %w", err)
		}
		if err := s.upsertCredentials(ctx, tx, c.Credentials); err != nil {
			return err
		}
		if err := s.enqueue(ctx, tx, c.Outbox); err != nil {
			return err
		}
		appended, err = s.appendAudit(ctx, tx, head, c.Audit)
		return err
	})
	if violation && !moved {
		return s.createViolation(ctx, r)
	}
	if err != nil {
		return s.errorf("create rotation %s: %w", r.ID, err)
	}
	copy(c.Audit, appended)
	return nil
}

// createViolation tells which unique constraint refused a new rotation, once
// its transaction is gone (PostgreSQL aborts a transaction on the first error).
func (s *Store) createViolation(ctx context.Context, r *rotator.Rotation) error {
	var active string
	err := s.queryRow(ctx, (`SELECT id FROM rotations WHERE key = ? AND finished = 0`), r.Key).Scan(&active)
	if err == nil {
		return s.errorf("create rotation %s for key %s: %w (%s)", r.ID, r.Key, rotator.ErrActiveRotation, active)
	}
	var one int
	if err := s.queryRow(ctx, (`SELECT 1 FROM rotations WHERE id = ?`), r.ID).Scan(&one); err == nil {
		return s.errorf("create rotation %s: id already used: %w", r.ID, rotator.ErrConflict)
	}
	// The active rotation finished between the insert and the look-up.
	return s.errorf("create rotation %s for key %s: %w", r.ID, r.Key, rotator.ErrActiveRotation)
}

// Save applies c in one transaction: the rotation (when c.Rotation is set)
// only if its stored version is still c.Rotation.Version, else
// rotator.ErrConflict; then the credential upserts, the approvals (a second
// decision by the same approver on the same gate: rotator.ErrDecided), the
// outbox rows and the audit appends. On success c.Rotation.Version is
// incremented and every c.Audit event carries its Seq, PrevHash and Hash.
// A Commit without a rotation records only its other rows. With c.Lease
// every write is fenced: nothing is written, and the error wraps
// rotator.ErrLeaseLost, unless the lease still holds its rotation (that of
// c.Rotation, else c.Lease.RotationID) unexpired by the database's clock.
func (s *Store) Save(ctx context.Context, c rotator.Commit) error {
	r := c.Rotation
	var args []any
	if r != nil {
		vals, err := rotationValues(r)
		if err != nil {
			return s.errorf("save rotation %s: %w", r.ID, err)
		}
		args = append(vals, r.ID, r.Version)
	}
	update := updateRotation
	if r != nil && c.Lease != nil {
		update += ` AND ` + s.leaseHeld()
		args = append(args, c.Lease.Owner, c.Lease.Epoch, 0)
	}
	if r == nil && c.Lease != nil && c.Lease.RotationID == "" {
		return s.errorf("save: a lease without its rotation fences nothing")
	}
	var appended []rotator.AuditEvent
	violation, decided := false, false
	err := s.write(ctx, func(tx *sql.Tx) error {
		head, err := s.lockHead(ctx, tx)
		if err != nil {
			return err
		}
		violation, decided = false, false
		if r != nil {
			res, err := s.txExec(ctx, tx, update, args...)
			if err != nil {
				violation = s.d.IsUniqueViolation(err)
				return fmt.Errorf("update: %w", err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return fmt.Errorf("update: %w", err)
			} else if n == 0 {
				return s.missingOrStale(ctx, tx, r, c.Lease)
			}
		} else if c.Lease != nil {
			if err := s.fence(ctx, tx, *c.Lease); err != nil {
				return err
			}
		}
		if err := s.upsertCredentials(ctx, tx, c.Credentials); err != nil {
			return err
		}
		if decided, err = s.insertApprovals(ctx, tx, c.Approvals); err != nil {
			return err
		}
		if err := s.enqueue(ctx, tx, c.Outbox); err != nil {
			return err
		}
		appended, err = s.appendAudit(ctx, tx, head, c.Audit)
		return err
	})
	what := "save"
	if r != nil {
		what = "save rotation " + r.ID
	}
	switch {
	case decided:
		return s.errorf("%s: %w", what, err)
	case violation:
		// Only a rotation made active again can hit the one-active index.
		return s.errorf("%s: %w", what, rotator.ErrActiveRotation)
	case err != nil:
		return s.errorf("%s: %w", what, err)
	}
	if r != nil {
		r.Version++
	}
	copy(c.Audit, appended)
	return nil
}

// leaseHeld is the condition of a fenced write (arguments: owner, epoch, 0):
// the lease still holds the rotation row, unexpired by the database's clock.
func (s *Store) leaseHeld() string {
	return `lease_owner = ? AND lease_epoch = ? AND lease_until > ` + s.d.NowPlus
}

// fence checks, inside a commit that writes no rotation, that l still holds
// its rotation. The check is a write of the rotation row (that changes
// nothing), not a read: it takes the row's lock until the commit ends, so
// that a takeover (Claim) cannot slip in between the check and the commit.
func (s *Store) fence(ctx context.Context, tx *sql.Tx, l rotator.Lease) error {
	res, err := s.txExec(ctx, tx, `UPDATE rotations SET lease_epoch = lease_epoch WHERE id = ? AND `+s.leaseHeld(),
		l.RotationID, l.Owner, l.Epoch, 0)
	if err != nil {
		return fmt.Errorf("fence: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("fence: %w", err)
	} else if n == 1 {
		return nil
	}
	var one int
	err = s.txQueryRow(ctx, tx, `SELECT 1 FROM rotations WHERE id = ?`, l.RotationID).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("rotation %s: %w", l.RotationID, rotator.ErrNotFound)
	case err != nil:
		return fmt.Errorf("fence: %w", err)
	}
	return fmt.Errorf("rotation %s: %w (owner %s, epoch %d)", l.RotationID, rotator.ErrLeaseLost, l.Owner, l.Epoch)
}

// missingOrStale tells why a rotation update wrote no row: the rotation is
// gone; the lease l (when given) no longer holds it — whatever its version,
// since a new holder's commits move the version on; or its version moved.
func (s *Store) missingOrStale(ctx context.Context, tx *sql.Tx, r *rotator.Rotation, l *rotator.Lease) error {
	var version, held int
	var err error
	if l != nil {
		err = s.txQueryRow(ctx, tx, `SELECT version, CASE WHEN `+s.leaseHeld()+` THEN 1 ELSE 0 END FROM rotations WHERE id = ?`,
			l.Owner, l.Epoch, 0, r.ID).Scan(&version, &held)
	} else {
		err = s.txQueryRow(ctx, tx, `SELECT version FROM rotations WHERE id = ?`, r.ID).Scan(&version)
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return rotator.ErrNotFound
	case err != nil:
		return fmt.Errorf("read version: %w", err)
	case l != nil && held == 0:
		return fmt.Errorf("%w (owner %s, epoch %d)", rotator.ErrLeaseLost, l.Owner, l.Epoch)
	}
	return fmt.Errorf("%w: version %d was read, the stored one is %d", rotator.ErrConflict, r.Version, version)
}

// GetRotation returns the rotation with id, or an error wrapping
// rotator.ErrNotFound.
func (s *Store) GetRotation(ctx context.Context, id string) (*rotator.Rotation, error) {
	r, err := scanRotation(s.queryRow(ctx, (`SELECT ` + rotationColumns + ` FROM rotations WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, s.errorf("rotation %s: %w", id, rotator.ErrNotFound)
	}
	if err != nil {
		return nil, s.errorf("get rotation %s: %w", id, err)
	}
	return r, nil
}

// ActiveRotation returns key's active rotation, or an error wrapping
// rotator.ErrNotFound when it has none.
func (s *Store) ActiveRotation(ctx context.Context, key string) (*rotator.Rotation, error) {
	r, err := scanRotation(s.queryRow(ctx, (`SELECT ` + rotationColumns + ` FROM rotations WHERE key = ? AND finished = 0`), key))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, s.errorf("active rotation of key %s: %w", key, rotator.ErrNotFound)
	}
	if err != nil {
		return nil, s.errorf("active rotation of key %s: %w", key, err)
	}
	return r, nil
}

// ListRotations returns the rotations matching f, newest first.
func (s *Store) ListRotations(ctx context.Context, f rotator.RotationFilter) ([]*rotator.Rotation, error) {
	query := `SELECT ` + rotationColumns + ` FROM rotations WHERE 1 = 1`
	var args []any
	if f.Key != "" {
		query += ` AND key = ?`
		args = append(args, f.Key)
	}
	if !f.Since.IsZero() {
		query += ` AND created_at >= ?`
		args = append(args, TimeText(f.Since))
	}
	if f.Mode != "" {
		query += ` AND mode = ?`
		args = append(args, string(f.Mode))
	}
	if f.ActiveOnly {
		query += ` AND finished = 0`
	}
	query += ` ORDER BY created_at DESC, id DESC` + limit(f.Limit)
	rs, err := s.queryRotations(ctx, query, args...)
	if err != nil {
		return nil, s.errorf("list rotations: %w", err)
	}
	return rs, nil
}

// DueRotations returns the active rotations whose next attempt is at or
// before now, the most overdue first. Held rotations are included: a hold's
// next attempt is its expiry (or the far future) and a decision sets it to now.
func (s *Store) DueRotations(ctx context.Context, now time.Time, n int) ([]*rotator.Rotation, error) {
	rs, err := s.queryRotations(ctx, `SELECT `+rotationColumns+` FROM rotations
		WHERE finished = 0 AND next_attempt_at <= ?
		ORDER BY next_attempt_at, id`+limit(n), TimeText(now))
	if err != nil {
		return nil, s.errorf("due rotations: %w", err)
	}
	return rs, nil
}

func (s *Store) queryRotations(ctx context.Context, query string, args ...any) ([]*rotator.Rotation, error) {
	rows, err := s.query(ctx, (query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*rotator.Rotation
	for rows.Next() {
		r, err := scanRotation(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// limit renders a LIMIT clause; n <= 0 means no limit.
func limit(n int) string {
	if n <= 0 {
		return ""
	}
	return " LIMIT " + strconv.Itoa(n)
}
