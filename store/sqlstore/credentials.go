package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/rekeyhq/rekey/rotator"
)

const credentialColumns = `key, generation, name, issuer_id, fingerprint, state, rotation_id, created_at, revoked_at`

// upsertCredentials writes creds by (key, generation). Credentials carry no
// secret, only the issuer's id and the SHA-256 fingerprint.
func (s *Store) upsertCredentials(ctx context.Context, tx *sql.Tx, creds []*rotator.Credential) error {
	if len(creds) == 0 {
		return nil
	}
	stmt, err := tx.PrepareContext(ctx, s.q(`INSERT INTO credentials (`+credentialColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (key, generation) DO UPDATE SET
			name = excluded.name, issuer_id = excluded.issuer_id, fingerprint = excluded.fingerprint,
			state = excluded.state, rotation_id = excluded.rotation_id,
			created_at = excluded.created_at, revoked_at = excluded.revoked_at`))
	if err != nil {
		return fmt.Errorf("upsert credentials: %w", err)
	}
	defer stmt.Close()
	for _, c := range creds {
		if c == nil || c.Key == "" {
			return fmt.Errorf("upsert credentials: a credential with a key is required")
		}
		if _, err := stmt.ExecContext(ctx, clean(c.Key), c.Generation, clean(c.Name), clean(c.IssuerID),
			clean(c.Fingerprint), clean(string(c.State)), clean(c.RotationID), TimeText(c.CreatedAt), TimeText(c.RevokedAt)); err != nil {
			return fmt.Errorf("upsert credential %s generation %d: %w", c.Key, c.Generation, err)
		}
	}
	return nil
}

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
