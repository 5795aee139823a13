package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/rekeyhq/rekey/rotator"
)

// insertApprovals records decisions inside a commit. A second decision by
// the same approver on the same gate of the same rotation fails with an
// error wrapping rotator.ErrDecided (decided is true); an unknown rotation
// with one wrapping rotator.ErrNotFound.
func (s *Store) insertApprovals(ctx context.Context, tx *sql.Tx, as []rotator.Approval) (decided bool, err error) {
	for _, a := range as {
		var one int
		err := s.txQueryRow(ctx, tx, (`SELECT 1 FROM rotations WHERE id = ?`), a.RotationID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return false, fmt.Errorf("approval of rotation %s: %w", a.RotationID, rotator.ErrNotFound)
		}
		if err != nil {
			return false, fmt.Errorf("approval of rotation %s: find rotation: %w", a.RotationID, err)
		}
		if _, err := s.txExec(ctx, tx, (`INSERT INTO approvals (rotation_id, gate, approver, verdict, via, comment, at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`),
			a.RotationID, clean(string(a.Gate)), clean(a.Approver), clean(string(a.Verdict)), clean(a.Via), clean(a.Comment), TimeText(a.At)); err != nil {
			if s.d.IsUniqueViolation(err) {
				return true, fmt.Errorf("approval of rotation %s, gate %s by %s: %w", a.RotationID, a.Gate, a.Approver, rotator.ErrDecided)
			}
			return false, fmt.Errorf("approval of rotation %s: insert: %w", a.RotationID, err)
		}
	}
	return false, nil
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
