package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// ErrUnauthenticated is wrapped by every authentication failure.
var ErrUnauthenticated = errors.New("missing or invalid credentials")

// BootstrapID is the identity of the bootstrap admin token.
const BootstrapID = "admin"

// Authenticator turns a request's credentials into a Principal: a
// verified client certificate (Certs), and a bearer credential — an rk_
// API token (looked up by hash), an OIDC ID token (a JWT), or the
// bootstrap admin token.
type Authenticator struct {
	// Tokens holds per-person API tokens; nil disables them.
	Tokens TokenStore
	// NotFound reports a TokenStore miss.
	NotFound func(error) bool
	// OIDC verifies provider tokens; nil disables them.
	OIDC *OIDC
	// Certs verifies client certificates; nil disables them.
	Certs *Certs
	// Bootstrap is the shared admin token (principal "admin", role admin);
	// empty disables it.
	Bootstrap string
	// Now is the clock (tests).
	Now func() time.Time
	// Departed, when set, reports whether the person named identity (a
	// canonical identity) was reported as having left; nil when not. A
	// principal it names is refused with a DepartedError, whatever the
	// credential. It must read state every daemon sharing the store sees
	// (the app asks the engine's state store).
	Departed func(ctx context.Context, identity string) (*Left, error)
	// RevokeDeparted revokes (and audits) API token tokenID of user, who
	// left; nil leaves the token refused but not revoked.
	RevokeDeparted func(ctx context.Context, tokenID, user string, left Left) error
}

// Authenticate checks r's client certificate and Authorization header.
//
// A client certificate, when one was presented, must verify (else
// ErrUnauthenticated, whatever else the request carries). With a verified
// certificate and no Authorization header, the certificate's principal is
// the caller. With both, the bearer credential decides only if it names the
// same person as the certificate (its grants, never the union of both),
// and the request is refused otherwise: a stolen certificate plus someone
// else's token must not mix two people's roles. With Certs.Required, a
// request without a verified certificate is refused. A person reported as
// having left (Departed) is refused whatever they present.
func (a *Authenticator) Authenticate(ctx context.Context, r *http.Request) (*Principal, error) {
	p, err := a.authenticate(ctx, r)
	if err != nil {
		return nil, err
	}
	return a.refuseDeparted(ctx, p)
}

func (a *Authenticator) authenticate(ctx context.Context, r *http.Request) (*Principal, error) {
	var cp *Principal
	if a.Certs != nil {
		p, err := a.Certs.Authenticate(r.TLS)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrUnauthenticated, err)
		}
		cp = p
		if cp == nil && a.Certs.Required() {
			return nil, fmt.Errorf("%w: a verified client certificate is required", ErrUnauthenticated)
		}
	}
	if cp != nil && len(r.Header.Values("Authorization")) == 0 {
		return cp, nil
	}
	bp, err := a.bearer(ctx, r)
	if err != nil || cp == nil {
		return bp, err
	}
	if a.Certs.dir.Canonical(bp.ID) != cp.ID {
		return nil, fmt.Errorf("%w: the bearer credential names %s, the client certificate (serial %s) %s: one request, one person",
			ErrUnauthenticated, bp.ID, cp.Cert.Serial, cp.ID)
	}
	bp.Cert = cp.Cert
	return bp, nil
}

// bearer checks the Authorization header of r.
func (a *Authenticator) bearer(ctx context.Context, r *http.Request) (*Principal, error) {
	h := r.Header.Values("Authorization")
	if len(h) != 1 {
		return nil, fmt.Errorf("%w: one Authorization: Bearer header is required", ErrUnauthenticated)
	}
	cred, ok := BearerCredential(h[0])
	if !ok {
		return nil, fmt.Errorf("%w: one Authorization: Bearer header is required", ErrUnauthenticated)
	}
	now := time.Now()
	if a.Now != nil {
		now = a.Now()
	}
	switch {
	case IsAPIToken(cred) && a.Tokens != nil:
		t, err := a.Tokens.TokenByHash(ctx, HashToken(cred))
		if err != nil {
			if a.NotFound != nil && a.NotFound(err) {
				return nil, ErrUnauthenticated
			}
			return nil, err
		}
		if !t.Live(now) {
			if a.Departed != nil && !t.RevokedAt.IsZero() {
				// Revoked by the departure, most likely: say why.
				if left, err := a.Departed(ctx, t.User); err == nil && left != nil {
					return nil, &DepartedError{Left: *left, TokenID: t.ID, Revoked: true}
				}
			}
			return nil, fmt.Errorf("%w: token %s is revoked or expired", ErrUnauthenticated, t.ID)
		}
		if err := Reserved(t.User); err != nil { // issued before reserved names were refused
			return nil, fmt.Errorf("%w: token %s: %v", ErrUnauthenticated, t.ID, err)
		}
		return &Principal{ID: t.User, Via: "token", TokenID: t.ID, TokenCreator: t.CreatedBy, TokenChain: ChainOf(t), Grants: []Grant{t.Grant}}, nil
	case strings.Count(cred, ".") == 2 && a.OIDC != nil:
		p, err := a.OIDC.Authenticate(ctx, cred)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrUnauthenticated, err)
		}
		return p, nil
	case a.Bootstrap != "" && Equal(cred, a.Bootstrap):
		return &Principal{ID: BootstrapID, Via: "bootstrap", Grants: []Grant{{Role: RoleAdmin}}}, nil
	}
	return nil, ErrUnauthenticated
}

// BearerCredential returns the credential of an Authorization header
// value of the Bearer scheme, whose name is case-insensitive (RFC 7235):
// "Bearer", "bearer" and "BEARER" are one scheme.
func BearerCredential(h string) (string, bool) {
	scheme, cred, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	cred = strings.TrimLeft(cred, " ")
	return cred, cred != ""
}

// Equal compares two secrets in constant time (of their hashes, so that
// neither length leaks).
func Equal(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

// Limiter throttles failed authentications per client address: each
// failure spends a token of the address's bucket; an empty bucket is
// answered 429 before any credential is checked.
type Limiter struct {
	rate  rate.Limit
	burst int

	mu   sync.Mutex
	byIP map[string]*rate.Limiter
}

// NewLimiter allows burst failures at once, refilled at perSecond.
func NewLimiter(perSecond float64, burst int) *Limiter {
	return &Limiter{rate: rate.Limit(perSecond), burst: burst, byIP: map[string]*rate.Limiter{}}
}

// ClientAddr is the address a request is throttled by: its peer IP (a Unix
// socket's peers share one bucket).
func ClientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil || host == "" {
		return "local"
	}
	return host
}

func (l *Limiter) get(addr string) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.byIP[addr]
	if !ok {
		if len(l.byIP) >= 10000 { // forget full buckets: they hold no state
			now := time.Now()
			for k, v := range l.byIP {
				if v.TokensAt(now) >= float64(l.burst) {
					delete(l.byIP, k)
				}
			}
		}
		lim = rate.NewLimiter(l.rate, l.burst)
		l.byIP[addr] = lim
	}
	return lim
}

// Blocked returns how long addr must wait before its next attempt, or 0.
func (l *Limiter) Blocked(addr string) time.Duration {
	tokens := l.get(addr).TokensAt(time.Now())
	if tokens >= 1 {
		return 0
	}
	return time.Duration(math.Ceil((1-tokens)/float64(l.rate))) * time.Second
}

// Failed records a failed authentication from addr.
func (l *Limiter) Failed(addr string) { l.get(addr).Allow() }
