package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// TokenPrefix marks rekey API tokens, so that secret scanners and people
// recognise one (and so that Authenticate knows where to look it up).
const TokenPrefix = "rk_"

// TokenRecord is a per-person API token as stored: never the token itself.
type TokenRecord struct {
	ID        string
	Hash      string
	User      string
	Grant     Grant
	CreatedBy string
	CreatedAt time.Time
	ExpiresAt time.Time // zero: never
	RevokedAt time.Time // zero: live
}

// Live reports whether t is neither revoked nor expired at now.
func (t TokenRecord) Live(now time.Time) bool {
	return t.RevokedAt.IsZero() && (t.ExpiresAt.IsZero() || now.Before(t.ExpiresAt))
}

// TokenStore keeps token records. Lookups of an unknown hash return an
// error for which NotFound reports true.
type TokenStore interface {
	CreateToken(ctx context.Context, t TokenRecord) error
	TokenByHash(ctx context.Context, hash string) (TokenRecord, error)
	ListTokens(ctx context.Context) ([]TokenRecord, error)
	RevokeToken(ctx context.Context, id string, at time.Time) error
}

// HashToken is how a token is stored and looked up. A plain SHA-256 is
// enough here, unlike for passwords: the token carries 256 random bits, so
// no dictionary or brute force can invert its hash, and a slow KDF would
// only slow down every request.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// TokenSpec describes a token to create.
type TokenSpec struct {
	User      string
	Grant     Grant
	TTL       time.Duration // 0: never expires
	CreatedBy string
}

// CreateToken mints a token (32 random bytes, prefixed rk_), stores its
// hash and returns the token, to be shown once.
func CreateToken(ctx context.Context, s TokenStore, spec TokenSpec, now time.Time) (string, TokenRecord, error) {
	user := Canonical(spec.User)
	if user == "" {
		return "", TokenRecord{}, errors.New("token: a user is required")
	}
	if err := Reserved(user); err != nil {
		return "", TokenRecord{}, fmt.Errorf("token: %w", err)
	}
	if _, err := ParseRole(string(spec.Grant.Role)); err != nil {
		return "", TokenRecord{}, fmt.Errorf("token: %w", err)
	}
	if spec.Grant.Keys != "" {
		if err := ValidPattern(spec.Grant.Keys); err != nil {
			return "", TokenRecord{}, fmt.Errorf("token: %w", err)
		}
	}
	if spec.TTL < 0 {
		return "", TokenRecord{}, errors.New("token: expiry must not be negative")
	}
	var raw [32]byte
	var id [8]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", TokenRecord{}, err
	}
	if _, err := rand.Read(id[:]); err != nil {
		return "", TokenRecord{}, err
	}
	tok := TokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	rec := TokenRecord{ID: "tok_" + hex.EncodeToString(id[:]), Hash: HashToken(tok), User: user, Grant: spec.Grant,
		CreatedBy: Canonical(spec.CreatedBy), CreatedAt: now.UTC().Truncate(time.Second)}
	if spec.TTL > 0 {
		rec.ExpiresAt = rec.CreatedAt.Add(spec.TTL)
	}
	if err := s.CreateToken(ctx, rec); err != nil {
		return "", TokenRecord{}, err
	}
	return tok, rec, nil
}

// IsAPIToken reports whether a bearer credential looks like a rekey API token.
func IsAPIToken(s string) bool { return strings.HasPrefix(s, TokenPrefix) }
