package auth

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRolesAndScopes(t *testing.T) {
	tests := map[string]struct {
		grant Grant
		act   Action
		key   Key
		want  bool
	}{
		"viewer reads":                      {Grant{Role: RoleViewer}, ActRead, Key{Name: "api"}, true},
		"viewer cannot rotate":              {Grant{Role: RoleViewer}, ActRotate, Key{Name: "api"}, false},
		"operator rotates staged":           {Grant{Role: RoleOperator}, ActRotate, Key{Name: "api"}, true},
		"operator cannot approve":           {Grant{Role: RoleOperator}, ActDecide, Key{Name: "api"}, false},
		"operator cannot go emergency":      {Grant{Role: RoleOperator}, ActEmergency, Key{Name: "api"}, false},
		"operator cannot decommission":      {Grant{Role: RoleOperator}, ActDecommission, Key{Name: "api"}, false},
		"approver decides":                  {Grant{Role: RoleApprover}, ActDecide, Key{Name: "api"}, true},
		"approver cannot rotate":            {Grant{Role: RoleApprover}, ActRotate, Key{Name: "api"}, false},
		"responder emergency":               {Grant{Role: RoleResponder}, ActEmergency, Key{Name: "api"}, true},
		"responder decommissions":           {Grant{Role: RoleResponder}, ActDecommission, Key{Name: "api"}, true},
		"responder cannot approve":          {Grant{Role: RoleResponder}, ActDecide, Key{Name: "api"}, false},
		"admin manages tokens":              {Grant{Role: RoleAdmin}, ActManageTokens, Key{}, true},
		"scoped admin cannot manage tokens": {Grant{Role: RoleAdmin, Keys: "api*"}, ActManageTokens, Key{}, false},
		"pattern matches":                   {Grant{Role: RoleOperator, Keys: "payments-*"}, ActRotate, Key{Name: "payments-eu"}, true},
		"pattern excludes":                  {Grant{Role: RoleOperator, Keys: "payments-*"}, ActRotate, Key{Name: "api"}, false},
		"team matches":                      {Grant{Role: RoleOperator, Team: "Payments"}, ActRotate, Key{Name: "x", Team: "payments"}, true},
		"team excludes":                     {Grant{Role: RoleOperator, Team: "payments"}, ActRotate, Key{Name: "x", Team: "search"}, false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			p := &Principal{ID: "p", Grants: []Grant{tt.grant}}
			if got := p.Can(tt.act, tt.key); got != tt.want {
				t.Errorf("Can(%s, %+v) = %v, want %v", tt.act, tt.key, got, tt.want)
			}
		})
	}
	var nobody *Principal
	if nobody.Can(ActRead, Key{}) {
		t.Error("a nil principal can read")
	}
}

func TestCanonical(t *testing.T) {
	d := NewDirectory(map[string]string{"Ana": "ana@example.com"})
	for in, want := range map[string]string{
		"alice@example.com":    "alice@example.com",
		"Alice@Example.com":    "alice@example.com",
		"alice@example.com ":   "alice@example.com",
		"\tALICE@example.COM ": "alice@example.com",
		"ana":                  "ana@example.com",
		" ANA ":                "ana@example.com",
	} {
		if got := d.Canonical(in); got != want {
			t.Errorf("Canonical(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEstimateBits(t *testing.T) {
	for tok, ok := range map[string]bool{
		"x":                                false,
		"e2e-admin-token-0123456789":       false,
		strings.Repeat("a", 64):            false,
		"correcthorsebatterystaplecorrect": false,
		"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08": true, // openssl rand -hex 32
		"q3mBXU0lY1n8e1Yk0S5aFqzD0vJq5cM0b3nYtLzQm8E=":                     true, // openssl rand -base64 32
		// Long but repetitive: accepted by length × alphabet alone.
		strings.Repeat("a", 128):               false,
		strings.Repeat("ab", 64):               false,
		strings.Repeat("0123456789abcdef", 4):  false,
		strings.Repeat("0123456789abcdef", 16): false,
		strings.Repeat("password", 16):         false,
		strings.Repeat("Tr0ub4dor&3", 12):      false,
		// Runs, counters and keyboard walks (outside tryout 3).
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789": false,
		"qwertyuiopasdfghjklzxcvbnmQWERTYUIOPASDFGHJKLZXCVBNM1234567890": false,
		counter(64, "%02x"): false,
		counter(100, "%x"):  false,
		"zyxwvutsrqponmlkjihgfedcbaZYXWVUTSRQPONMLKJIHGFEDCBA9876543210": false,
		// 64 random digits: 213 bits, not hex's 256.
		"3141592653589793238462643383279502884197169399375105820974944592": false,
		"correct horse battery staple " + "correct horse battery staple!!": false,
	} {
		if got := EstimateBits(tok) >= MinSharedTokenBits; got != ok {
			t.Errorf("EstimateBits(%q) = %.0f: accepted %v, want %v", tok, EstimateBits(tok), got, ok)
		}
	}
	// Random tokens of the recommended shapes pass: a repeat found by
	// chance is short and costs a few characters, not the margin. The
	// tokens come from a seeded generator, so the test is the same on
	// every run.
	rng := mrand.NewChaCha8([32]byte{'r', 'e', 'k', 'e', 'y'})
	for range 5000 {
		k := make([]byte, 32)
		_, _ = rng.Read(k)
		for _, tok := range []string{hex.EncodeToString(k), base64.StdEncoding.EncodeToString(k), base64.RawURLEncoding.EncodeToString(k)} {
			if b := EstimateBits(tok); b < MinSharedTokenBits {
				t.Fatalf("a random 32-byte token %q estimated at %.0f bits", tok, b)
			}
		}
	}
}

// memTokens is an in-memory TokenStore (the SQL one is tested in
// store/sqlstore/storetest and through the admin API in app).
type memTokens struct {
	mu sync.Mutex
	m  map[string]TokenRecord
}

var errNotFound = errors.New("not found")

func (s *memTokens) CreateToken(_ context.Context, t TokenRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[t.Hash] = t
	return nil
}
func (s *memTokens) TokenByHash(_ context.Context, h string) (TokenRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.m[h]
	if !ok {
		return t, errNotFound
	}
	return t, nil
}
func (s *memTokens) ListTokens(context.Context) ([]TokenRecord, error) { return nil, nil }
func (s *memTokens) RevokeToken(_ context.Context, id string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for h, t := range s.m {
		if t.ID == id {
			t.RevokedAt = at
			s.m[h] = t
		}
	}
	return nil
}

func TestAPITokens(t *testing.T) {
	st := &memTokens{m: map[string]TokenRecord{}}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := now
	a := &Authenticator{Tokens: st, NotFound: func(err error) bool { return errors.Is(err, errNotFound) }, Now: func() time.Time { return clock }}
	tok, rec, err := CreateToken(t.Context(), st, TokenSpec{User: " Ana@Example.com", Grant: Grant{Role: RoleApprover}, TTL: time.Hour}, now)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, "rk_") || len(tok) < 40 || strings.Contains(rec.Hash, tok) || rec.Hash != HashToken(tok) {
		t.Fatalf("token %q, record %+v", tok, rec)
	}
	auth := func(cred string) (*Principal, error) {
		r, _ := http.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+cred)
		return a.Authenticate(t.Context(), r)
	}
	p, err := auth(tok)
	if err != nil || p.ID != "ana@example.com" || !p.Can(ActDecide, Key{Name: "k"}) {
		t.Fatalf("valid token: %+v, %v", p, err)
	}
	if _, err := auth(tok + "x"); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("altered token: %v", err)
	}
	clock = now.Add(2 * time.Hour)
	if _, err := auth(tok); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("expired token: %v", err)
	}
	clock = now
	_ = st.RevokeToken(t.Context(), rec.ID, now)
	if _, err := auth(tok); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("revoked token: %v", err)
	}
	if _, _, err := CreateToken(t.Context(), st, TokenSpec{User: "x", Grant: Grant{Role: "root"}}, now); err == nil {
		t.Error("an unknown role was accepted")
	}
}

func TestLimiter(t *testing.T) {
	l := NewLimiter(1, 3)
	for range 3 {
		if d := l.Blocked("10.0.0.1"); d != 0 {
			t.Fatalf("blocked after fewer failures than the burst: %s", d)
		}
		l.Failed("10.0.0.1")
	}
	if d := l.Blocked("10.0.0.1"); d <= 0 {
		t.Error("not blocked after the burst of failures")
	}
	if d := l.Blocked("10.0.0.2"); d != 0 {
		t.Error("another address is blocked too")
	}
}

// counter is fmt.Sprintf(format, i) for i from 0 to n-1, joined.
func counter(n int, format string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, format, i)
	}
	return b.String()
}

// Two entries granting the same role (an identity entry and a pattern)
// name it once.
func TestRoleNamesOnce(t *testing.T) {
	p := &Principal{ID: "bob@example.com", Grants: []Grant{{Role: RoleViewer}, {Role: RoleViewer}, {Role: RoleOperator, Keys: "pay-*"}}}
	if got := strings.Join(p.RoleNames(), ", "); got != "viewer, operator keys=pay-*" {
		t.Fatalf("roles %q", got)
	}
}
