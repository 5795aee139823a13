package sqlstore

import (
	"context"
	"database/sql"

	"github.com/rekeyhq/rekey/rotator"
)

// KeyStates returns, for every key with a current credential or an active
// rotation, that credential and that rotation (either may be nil). A key
// whose records are all history — revoked credentials, finished rotations —
// has nothing current to report and is left out, as is a key never seen.
//
// It is three index scans in one read-only snapshot: current credentials
// from the covering partial index credentials_current, live previous ones
// from credentials_previous, active rotations from the partial unique index
// rotations_one_active_per_key. For 100,000 keys it
// takes a fraction of a second (BenchmarkKeyStates100k in store/sqlite).
func (s *Store) KeyStates(ctx context.Context) (map[string]rotator.KeyState, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return nil, s.errorf("key states: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	states, err := currentCredentials(ctx, tx, int(s.keyStates.Load()))
	if err != nil {
		return nil, s.errorf("key states: current credentials: %w", err)
	}
	if err := previousCredentials(ctx, tx, states); err != nil {
		return nil, s.errorf("key states: previous credentials: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+rotationColumns+` FROM rotations WHERE finished = 0`)
	if err != nil {
		return nil, s.errorf("key states: active rotations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRotation(rows)
		if err != nil {
			return nil, s.errorf("key states: active rotations: %w", err)
		}
		st := states[r.Key]
		st.Key, st.Active = r.Key, r
		states[r.Key] = st
	}
	if err := rows.Err(); err != nil {
		return nil, s.errorf("key states: active rotations: %w", err)
	}
	s.keyStates.Store(int64(len(states)))
	return states, nil
}

func currentCredentials(ctx context.Context, tx *sql.Tx, sizeHint int) (map[string]rotator.KeyState, error) {
	// Only the columns of the covering index; state is 'current' by the
	// WHERE clause.
	rows, err := tx.QueryContext(ctx, `SELECT key, generation, name, issuer_id, fingerprint, rotation_id, created_at, revoked_at
		FROM credentials WHERE state = 'current'`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	states := make(map[string]rotator.KeyState, sizeHint)
	// Credentials are allocated in blocks, not one by one: 100,000 small
	// allocations are a good part of the call's cost.
	var block []rotator.Credential
	for rows.Next() {
		if len(block) == cap(block) {
			block = make([]rotator.Credential, 0, max(64, min(sizeHint, 4096)))
		}
		block = append(block, rotator.Credential{State: rotator.CredCurrent})
		c := &block[len(block)-1]
		if err := rows.Scan(&c.Key, &c.Generation, &c.Name, &c.IssuerID, &c.Fingerprint, &c.RotationID,
			timeCol{&c.CreatedAt}, timeCol{&c.RevokedAt}); err != nil {
			return nil, err
		}
		// Should a key ever have two current generations, the newest wins.
		if st, ok := states[c.Key]; ok && st.Current.Generation > c.Generation {
			continue
		}
		states[c.Key] = rotator.KeyState{Key: c.Key, Current: c}
	}
	return states, rows.Err()
}

// qPreviousCredentials reads the live previous generations through the
// partial index credentials_previous.
const qPreviousCredentials = `SELECT key, generation, name, issuer_id, fingerprint, rotation_id, created_at, revoked_at
		FROM credentials WHERE state = 'previous' ORDER BY key, generation`

// previousCredentials adds each key's live previous generations (few: one
// per key between a cut-over and its revoke) to states.
func previousCredentials(ctx context.Context, tx *sql.Tx, states map[string]rotator.KeyState) error {
	rows, err := tx.QueryContext(ctx, qPreviousCredentials)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		c := &rotator.Credential{State: rotator.CredPrevious}
		if err := rows.Scan(&c.Key, &c.Generation, &c.Name, &c.IssuerID, &c.Fingerprint, &c.RotationID,
			timeCol{&c.CreatedAt}, timeCol{&c.RevokedAt}); err != nil {
			return err
		}
		st := states[c.Key]
		st.Key = c.Key
		st.Previous = append(st.Previous, c)
		states[c.Key] = st
	}
	return rows.Err()
}
