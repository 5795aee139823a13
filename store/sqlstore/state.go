package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// GetState returns the value an adapter stored under namespace and key, and
// whether there is one.
func (s *Store) GetState(ctx context.Context, namespace, key string) (string, bool, error) {
	var v string
	err := s.queryRow(ctx, (`SELECT value FROM adapter_state WHERE namespace = ? AND key = ?`), namespace, key).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, s.errorf("get state %s/%s: %w", namespace, key, err)
	}
	return v, true, nil
}

// PutState stores value under namespace and key, replacing any previous one.
// Values must never hold secret material.
func (s *Store) PutState(ctx context.Context, namespace, key, value string) error {
	if namespace == "" || key == "" {
		return s.errorf("put state: a namespace and a key are required")
	}
	if _, err := s.exec(ctx, (`INSERT INTO adapter_state (namespace, key, value, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`),
		clean(namespace), clean(key), clean(value), TimeText(time.Now())); err != nil {
		return s.errorf("put state %s/%s: %w", namespace, key, err)
	}
	return nil
}

// DeleteState removes the entry under namespace and key, if any
// (rotator.StateDeleter).
func (s *Store) DeleteState(ctx context.Context, namespace, key string) error {
	if _, err := s.exec(ctx, `DELETE FROM adapter_state WHERE namespace = ? AND key = ?`, namespace, key); err != nil {
		return s.errorf("delete state %s/%s: %w", namespace, key, err)
	}
	return nil
}
