package kubeadapt

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// SecretPrefix starts every API key; 32 base62 characters follow it.
const SecretPrefix = "ka_live_"

const secretChars = 32

// Key statuses, as reported by the admin API and the kubeadapt_api_keys gauge.
const (
	StatusActive  = "active"
	StatusRevoked = "revoked"
)

// Scopes a key may be granted.
const (
	ScopeClustersRead         = "clusters:read"
	ScopeClustersWrite        = "clusters:write"
	ScopeCostsRead            = "costs:read"
	ScopeRecommendationsRead  = "recommendations:read"
	ScopeRecommendationsWrite = "recommendations:write"
)

// Scopes returns every scope a key may be granted, sorted.
func Scopes() []string {
	return []string{
		ScopeClustersRead, ScopeClustersWrite, ScopeCostsRead,
		ScopeRecommendationsRead, ScopeRecommendationsWrite,
	}
}

const maxNameLen = 128

// Errors returned by the Go accessors; the admin API maps them to 422, 404
// and 409.
var (
	ErrInvalid        = errors.New("kubeadapt: invalid api key request")
	ErrNotFound       = errors.New("kubeadapt: api key not found")
	ErrAlreadyRevoked = errors.New("kubeadapt: api key already revoked")
)

// KeyRequest is the body of POST /admin/v1/api-keys.
type KeyRequest struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
	// AllowedClusterIDs restricts the key to these clusters; nil or empty
	// means every cluster.
	AllowedClusterIDs []string `json:"allowed_cluster_ids"`
	// IdempotencyKey, when set, is the create call's idempotency key for
	// clients that cannot send the Idempotency-Key header; the key itself
	// ignores it.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// KeyInfo describes a key without its secret; it is also the JSON shape of
// the admin API.
type KeyInfo struct {
	ID                string     `json:"id"`
	Name              string     `json:"name"`
	Scopes            []string   `json:"scopes"`
	AllowedClusterIDs []string   `json:"allowed_cluster_ids"` // null: every cluster
	CreatedAt         time.Time  `json:"created_at"`
	LastUsedAt        *time.Time `json:"last_used_at"`
	RevokedAt         *time.Time `json:"revoked_at"`
	Status            string     `json:"status"` // StatusActive or StatusRevoked
}

// apiKey is a stored key. scopes and allowed are never mutated after
// creation, so callers may share them; the times are guarded by Server.mu.
type apiKey struct {
	id, name   string
	scopes     []string
	allowed    []string // nil: every cluster
	hash       [sha256.Size]byte
	createdAt  time.Time
	lastUsedAt time.Time // zero: never
	revokedAt  time.Time // zero: active
}

func (k *apiKey) info() KeyInfo {
	ki := KeyInfo{
		ID:                k.id,
		Name:              k.name,
		Scopes:            slices.Clone(k.scopes),
		AllowedClusterIDs: slices.Clone(k.allowed),
		CreatedAt:         k.createdAt,
		Status:            StatusActive,
	}
	if !k.lastUsedAt.IsZero() {
		t := k.lastUsedAt
		ki.LastUsedAt = &t
	}
	if !k.revokedAt.IsZero() {
		t := k.revokedAt
		ki.RevokedAt = &t
		ki.Status = StatusRevoked
	}
	return ki
}

// CreateKey mints a key as POST /admin/v1/api-keys does and returns its
// secret, which the server does not keep. Errors wrap ErrInvalid.
func (s *Server) CreateKey(req KeyRequest) (KeyInfo, string, error) {
	req, err := normalize(req)
	if err != nil {
		return KeyInfo{}, "", err
	}
	secret := SecretPrefix + randomBase62(secretChars)
	k := &apiKey{
		name:    req.Name,
		scopes:  req.Scopes,
		allowed: req.AllowedClusterIDs,
		hash:    sha256.Sum256([]byte(secret)),
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	for k.id == "" || s.byID[k.id] != nil {
		k.id = newKeyID()
	}
	if s.byHash[k.hash] != nil { // 190 random bits: unreachable in practice
		return KeyInfo{}, "", errors.New("kubeadapt: secret collision, retry")
	}
	k.createdAt = s.now().UTC()
	s.keys = append(s.keys, k)
	s.byID[k.id] = k
	s.byHash[k.hash] = k
	return k.info(), secret, nil
}

// Revoke revokes a key as DELETE /admin/v1/api-keys/{id} does, effective
// on the next request. It returns ErrNotFound or ErrAlreadyRevoked.
func (s *Server) Revoke(id string) (KeyInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.byID[id]
	if k == nil {
		return KeyInfo{}, ErrNotFound
	}
	if !k.revokedAt.IsZero() {
		return k.info(), ErrAlreadyRevoked
	}
	k.revokedAt = s.now().UTC()
	return k.info(), nil
}

// Keys returns every key, in creation order, without secrets.
func (s *Server) Keys() []KeyInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]KeyInfo, 0, len(s.keys))
	for _, k := range s.keys {
		out = append(out, k.info())
	}
	return out
}

// Key returns one key without its secret.
func (s *Server) Key(id string) (KeyInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.byID[id]
	if k == nil {
		return KeyInfo{}, false
	}
	return k.info(), true
}

// ValidKeyFormat reports whether v has the shape of an API key:
// SecretPrefix followed by exactly 32 base62 characters.
func ValidKeyFormat(v string) bool {
	rest, ok := strings.CutPrefix(v, SecretPrefix)
	if !ok || len(rest) != secretChars {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if strings.IndexByte(base62, rest[i]) < 0 {
			return false
		}
	}
	return true
}

type invalidError struct{ msg string }

func (e *invalidError) Error() string        { return ErrInvalid.Error() + ": " + e.msg }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

func invalidf(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}

// normalize validates req and returns a copy with trimmed name, scopes and
// cluster ids de-duplicated in order, and an empty allow-list as nil.
func normalize(req KeyRequest) (KeyRequest, error) {
	out := KeyRequest{Name: strings.TrimSpace(req.Name)}
	switch {
	case out.Name == "":
		return out, invalidf("name is required")
	case utf8.RuneCountInString(out.Name) > maxNameLen:
		return out, invalidf("name is longer than %d characters", maxNameLen)
	case !utf8.ValidString(out.Name) || strings.ContainsFunc(out.Name, unicode.IsControl):
		return out, invalidf("name contains invalid characters")
	}
	if len(req.Scopes) == 0 {
		return out, invalidf("scopes must hold at least one of %s", strings.Join(Scopes(), ", "))
	}
	for _, sc := range req.Scopes {
		if !slices.Contains(Scopes(), sc) {
			return out, invalidf("unknown scope %q (known: %s)", sc, strings.Join(Scopes(), ", "))
		}
		if !slices.Contains(out.Scopes, sc) {
			out.Scopes = append(out.Scopes, sc)
		}
	}
	for _, id := range req.AllowedClusterIDs {
		if id == "" || len(id) > 64 || strings.ContainsFunc(id, func(r rune) bool {
			return unicode.IsSpace(r) || unicode.IsControl(r)
		}) {
			return out, invalidf("allowed_cluster_ids holds an invalid cluster id %q", id)
		}
		if !slices.Contains(out.AllowedClusterIDs, id) {
			out.AllowedClusterIDs = append(out.AllowedClusterIDs, id)
		}
	}
	return out, nil
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// randomBase62 returns n uniformly random base62 characters from
// crypto/rand (bytes >= 248 = 4*62 are rejected to avoid modulo bias).
func randomBase62(n int) string {
	out := make([]byte, 0, n)
	var buf [64]byte
	for len(out) < n {
		_, _ = rand.Read(buf[:]) // never fails since Go 1.24
		for _, b := range buf {
			if b >= 248 {
				continue
			}
			out = append(out, base62[b%62])
			if len(out) == n {
				break
			}
		}
	}
	return string(out)
}

func newKeyID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "key_" + hex.EncodeToString(b[:])
}
