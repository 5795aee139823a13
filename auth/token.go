package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
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
	// Chain is the people behind the token: its creator, the creator of
	// the token its creator used, and so on (deduplicated, at most
	// MaxChain). Empty for a token created before rekey recorded chains:
	// ChainOf falls back to CreatedBy.
	Chain     []string
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
	// Chain is the people behind the creator's credential
	// (Principal.Behind of the creator): CreatedBy first. CreateToken puts
	// CreatedBy first if it is missing.
	Chain []string
}

// MaxChain bounds the people behind a token. A token whose chain would be
// longer is refused (ErrChainTooLong), never truncated: dropping the
// oldest creator would let a long enough chain launder them out.
const MaxChain = 16

// ErrChainTooLong is returned by CreateToken for a chain over MaxChain.
var ErrChainTooLong = fmt.Errorf("token: more than %d people would be behind it (tokens created with tokens created with tokens…); create it with a token fewer people are behind", MaxChain)

// People deduplicates canonical identities, in order, without empties.
func People(ids ...string) []string {
	var out []string
	for _, id := range ids {
		if c := Canonical(id); c != "" && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// ChainOf is the people behind t: its recorded chain, or for a token
// created before chains were recorded, its creator.
func ChainOf(t TokenRecord) []string {
	if len(t.Chain) > 0 {
		return People(t.Chain...)
	}
	return People(t.CreatedBy)
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
	if len(People(append([]string{spec.CreatedBy}, spec.Chain...)...)) > MaxChain {
		return "", TokenRecord{}, ErrChainTooLong
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
		CreatedBy: Canonical(spec.CreatedBy), Chain: People(append([]string{spec.CreatedBy}, spec.Chain...)...), CreatedAt: now.UTC().Truncate(time.Second)}
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
