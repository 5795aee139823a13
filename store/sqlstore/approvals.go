package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/rekeyhq/rekey/rotator"
)

// AddApproval records a's decision and appends ev to the audit chain in one
// transaction. A second decision by the same approver on the same gate of
// the same rotation returns an error wrapping rotator.ErrConflict; an unknown
// rotation one wrapping rotator.ErrNotFound. An ev without an Action is not
// appended: the engine passes none when the decision's event goes with a
// rotation commit of its own.
func (s *Store) AddApproval(ctx context.Context, a rotator.Approval, ev rotator.AuditEvent) error {
	violation := false
	err := s.write(ctx, func(tx *sql.Tx) error {
		head, err := s.lockHead(ctx, tx)
		if err != nil {
			return err
		}
		var one int
		err = s.txQueryRow(ctx, tx, (`SELECT 1 FROM rotations WHERE id = ?`), a.RotationID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return rotator.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("find rotation: %w", err)
		}
		if _, err := s.txExec(ctx, tx, (`INSERT INTO approvals (rotation_id, gate, approver, verdict, via, comment, at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`),
			a.RotationID, clean(string(a.Gate)), clean(a.Approver), clean(string(a.Verdict)), clean(a.Via), clean(a.Comment), TimeText(a.At)); err != nil {
			violation = s.d.IsUniqueViolation(err)
			return fmt.Errorf("insert: %w", err)
		}
		if ev.Action == "" {
			return nil // the caller records the decision's event with its own commit
		}
		_, err = s.appendAudit(ctx, tx, head, []rotator.AuditEvent{ev})
		return err
	})
	if violation {
		return s.errorf("approval of rotation %s, gate %s by %s: already decided: %w", a.RotationID, a.Gate, a.Approver, rotator.ErrConflict)
	}
	if err != nil {
		return s.errorf("approval of rotation %s: %w", a.RotationID, err)
	}
	return nil
}

// Approvals returns the decisions on rotationID in the order they were made.
func (s *Store) Approvals(ctx context.Context, rotationID string) ([]rotator.Approval, error) {
	rows, err := s.query(ctx, (`SELECT rotation_id, gate, approver, verdict, via, comment, at
		FROM approvals WHERE rotation_id = ? ORDER BY at, gate, approver`), rotationID)
	if err != nil {
		return nil, s.errorf("approvals of rotation %s: %w", rotationID, err)
	}
	defer rows.Close()
	var out []rotator.Approval
	for rows.Next() {
		var a rotator.Approval
		if err := rows.Scan(&a.RotationID, &a.Gate, &a.Approver, &a.Verdict, &a.Via, &a.Comment, timeCol{&a.At}); err != nil {
			return nil, s.errorf("approvals of rotation %s: %w", rotationID, err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errorf("approvals of rotation %s: %w", rotationID, err)
	}
	return out, nil
}
