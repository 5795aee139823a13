package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/rekeyhq/rekey/rotator"
)

const credentialColumns = `key, generation, name, issuer_id, fingerprint, state, rotation_id, created_at, revoked_at`

// upsertCredentials writes creds by (key, generation), in one multi-row
// upsert per chunk. A commit may carry the same generation twice (an intent,
// then the minted credential): the last one wins, as it would row by row
// (PostgreSQL refuses to update one row twice in a statement). Credentials
// carry no secret, only the issuer's id and the SHA-256 fingerprint.
func (s *Store) upsertCredentials(ctx context.Context, tx *sql.Tx, creds []*rotator.Credential) error {
	if len(creds) == 0 {
		return nil
	}
	type kg struct {
		key string
		gen int
	}
	last := make(map[kg]int, len(creds))
	for i, c := range creds {
		if c == nil || c.Key == "" {
			return fmt.Errorf("upsert credentials: a credential with a key is required")
		}
		last[kg{c.Key, c.Generation}] = i
	}
	rows := make([]*rotator.Credential, 0, len(last))
	for i, c := range creds {
		if last[kg{c.Key, c.Generation}] == i {
			rows = append(rows, c)
		}
	}
	for from := 0; from < len(rows); from += maxRowsPerInsert {
		chunk := rows[from:min(from+maxRowsPerInsert, len(rows))]
		args := make([]any, 0, 9*len(chunk))
		for _, c := range chunk {
			args = append(args, clean(c.Key), c.Generation, clean(c.Name), clean(c.IssuerID),
				clean(c.Fingerprint), clean(string(c.State)), clean(c.RotationID), TimeText(c.CreatedAt), TimeText(c.RevokedAt))
		}
		if _, err := s.txExec(ctx, tx, upsertCredential[len(chunk)], args...); err != nil {
			return fmt.Errorf("upsert credential %s generation %d: %w", chunk[0].Key, chunk[0].Generation, err)
		}
	}
	return nil
}

var upsertCredential = multiRowInsert(`INSERT INTO credentials (`+credentialColumns+`) VALUES `, 9, `
		ON CONFLICT (key, generation) DO UPDATE SET
			name = excluded.name, issuer_id = excluded.issuer_id, fingerprint = excluded.fingerprint,
			state = excluded.state, rotation_id = excluded.rotation_id,
			created_at = excluded.created_at, revoked_at = excluded.revoked_at`)

func scanCredential(sc scanner) (*rotator.Credential, error) {
	var c rotator.Credential
	if err := sc.Scan(&c.Key, &c.Generation, &c.Name, &c.IssuerID, &c.Fingerprint, &c.State, &c.RotationID,
		timeCol{&c.CreatedAt}, timeCol{&c.RevokedAt}); err != nil {
		return nil, err
	}
	return &c, nil
}

// Credentials returns every generation of key, oldest first.
func (s *Store) Credentials(ctx context.Context, key string) ([]*rotator.Credential, error) {
	cs, err := s.queryCredentials(ctx, `SELECT `+credentialColumns+` FROM credentials WHERE key = ? ORDER BY generation`, key)
	if err != nil {
		return nil, s.errorf("credentials of key %s: %w", key, err)
	}
	return cs, nil
}

// WorkingCredentials returns the credentials of key that are not revoked,
// those of the given generations and the highest generation, oldest first:
// what a rotation works on, read through the credentials_live partial index
// and the (key, generation) key, so that its cost does not grow with the
// key's history. Implements rotator.WorkingSetStore.
func (s *Store) WorkingCredentials(ctx context.Context, key string, generations ...int) ([]*rotator.Credential, error) {
	args := []any{key, key}
	for _, g := range generations {
		args = append(args, g)
	}
	args = append(args, key)
	cs, err := s.queryCredentials(ctx, `SELECT `+credentialColumns+` FROM credentials`+s.d.indexedBy("credentials_live")+` WHERE key = ? AND state <> 'revoked'
		UNION
		SELECT `+credentialColumns+` FROM credentials WHERE key = ? AND generation IN (`+strings.Repeat("?, ", len(generations))+`
			(SELECT MAX(generation) FROM credentials WHERE key = ?))
		ORDER BY generation`, args...)
	if err != nil {
		return nil, s.errorf("credentials of key %s: %w", key, err)
	}
	return cs, nil
}

// CredentialByFingerprint returns the credentials whose SHA-256 fingerprint
// is fingerprint, by key and generation.
func (s *Store) CredentialByFingerprint(ctx context.Context, fingerprint string) ([]*rotator.Credential, error) {
	if fingerprint == "" {
		return nil, nil // an unminted intent has an empty fingerprint; it matches nothing
	}
	cs, err := s.queryCredentials(ctx, `SELECT `+credentialColumns+` FROM credentials WHERE fingerprint = ? ORDER BY key, generation`, fingerprint)
	if err != nil {
		return nil, s.errorf("credentials by fingerprint %s: %w", rotator.ShortFingerprint(fingerprint), err)
	}
	return cs, nil
}

func (s *Store) queryCredentials(ctx context.Context, query string, args ...any) ([]*rotator.Credential, error) {
	rows, err := s.query(ctx, (query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*rotator.Credential
	for rows.Next() {
		c, err := scanCredential(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
