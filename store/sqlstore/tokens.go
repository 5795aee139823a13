package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// APIToken is one per-person admin API token as stored: its hash, never the
// token itself.
type APIToken struct {
	ID        string
	Hash      string // hex SHA-256 of the token
	User      string // canonical identity
	Role      string
	Keys      string // key name pattern; "" = every key
	Team      string // owner team scope; "" = none
	CreatedBy string
	// Chain is the people behind the token (auth.TokenRecord.Chain),
	// stored as a JSON array; nil for a token stored before the column.
	Chain     []string
	CreatedAt time.Time
	ExpiresAt time.Time // zero = never
	RevokedAt time.Time // zero = live
}

// CreateToken records a new token. A duplicate id or hash is an error.
func (s *Store) CreateToken(ctx context.Context, t APIToken) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		chain := ""
		if len(t.Chain) > 0 {
			cleaned := make([]string, len(t.Chain))
			for i, c := range t.Chain {
				cleaned[i] = clean(c)
			}
			b, err := json.Marshal(cleaned)
			if err != nil {
				return fmt.Errorf("create token %s: %w", t.ID, err)
			}
			chain = string(b)
		}
		_, err := s.txExec(ctx, tx, `INSERT INTO api_tokens (id, hash, user_id, role, keys, team, created_by, created_by_chain, created_at, expires_at, revoked_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '')`,
			t.ID, t.Hash, clean(t.User), clean(t.Role), clean(t.Keys), clean(t.Team), clean(t.CreatedBy), chain, TimeText(t.CreatedAt), TimeText(t.ExpiresAt))
		if err != nil {
			return fmt.Errorf("create token %s: %w", t.ID, err)
		}
		return nil
	})
}

const tokenCols = `id, hash, user_id, role, keys, team, created_by, created_by_chain, created_at, expires_at, revoked_at`

func scanToken(sc interface{ Scan(...any) error }) (APIToken, error) {
	var t APIToken
	var chain string
	err := sc.Scan(&t.ID, &t.Hash, &t.User, &t.Role, &t.Keys, &t.Team, &t.CreatedBy, &chain, timeCol{&t.CreatedAt}, timeCol{&t.ExpiresAt}, timeCol{&t.RevokedAt})
	if err == nil && chain != "" {
		if jerr := json.Unmarshal([]byte(chain), &t.Chain); jerr != nil {
			return t, fmt.Errorf("token %s: people behind it: %w", t.ID, jerr)
		}
	}
	return t, err
}

// TokenByHash returns the token whose hash is hash (revoked and expired
// ones included: the caller judges), or an error wrapping
// rotator.ErrNotFound.
func (s *Store) TokenByHash(ctx context.Context, hash string) (APIToken, error) {
	t, err := scanToken(s.queryRow(ctx, `SELECT `+tokenCols+` FROM api_tokens WHERE hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("token: %w", rotator.ErrNotFound)
	}
	if err != nil {
		return t, s.errorf("token by hash: %w", err)
	}
	return t, nil
}

// ListTokens returns every token, oldest first.
func (s *Store) ListTokens(ctx context.Context) ([]APIToken, error) {
	rows, err := s.query(ctx, `SELECT `+tokenCols+` FROM api_tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, s.errorf("list tokens: %w", err)
	}
	defer rows.Close()
	var out []APIToken
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, s.errorf("list tokens: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errorf("list tokens: %w", err)
	}
	return out, nil
}

// RevokeToken marks token id revoked at `at`. Revoking a revoked token
// keeps its first revocation time; an unknown id wraps rotator.ErrNotFound.
func (s *Store) RevokeToken(ctx context.Context, id string, at time.Time) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		var revoked string
		err := s.txQueryRow(ctx, tx, `SELECT revoked_at FROM api_tokens WHERE id = ?`, id).Scan(&revoked)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("token %s: %w", id, rotator.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("revoke token %s: %w", id, err)
		}
		if revoked != "" {
			return nil
		}
		if _, err := s.txExec(ctx, tx, `UPDATE api_tokens SET revoked_at = ? WHERE id = ?`, TimeText(at), id); err != nil {
			return fmt.Errorf("revoke token %s: %w", id, err)
		}
		return nil
	})
}

// RevokeLiveToken revokes token id at `at` only if it is not revoked yet,
// in one conditional UPDATE, and reports whether it did: of several
// daemons revoking one token at once, exactly one is told it revoked it
// (and audits it). An unknown id wraps rotator.ErrNotFound.
func (s *Store) RevokeLiveToken(ctx context.Context, id string, at time.Time) (bool, error) {
	changed := false
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := s.txExec(ctx, tx, `UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at = ''`, TimeText(at), id)
		if err != nil {
			return fmt.Errorf("revoke token %s: %w", id, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("revoke token %s: %w", id, err)
		}
		if changed = n == 1; changed {
			return nil
		}
		var revoked string
		if err := s.txQueryRow(ctx, tx, `SELECT revoked_at FROM api_tokens WHERE id = ?`, id).Scan(&revoked); errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("token %s: %w", id, rotator.ErrNotFound)
		} else if err != nil {
			return fmt.Errorf("revoke token %s: %w", id, err)
		}
		return nil
	})
	return changed, err
}
