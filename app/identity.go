package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/rekeyhq/rekey/auth"
	"github.com/rekeyhq/rekey/config"
	"github.com/rekeyhq/rekey/internal/secretref"
	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/store/sqlstore"
)

// sqlTokens is what the built-in stores offer for API tokens.
type sqlTokens interface {
	CreateToken(ctx context.Context, t sqlstore.APIToken) error
	TokenByHash(ctx context.Context, hash string) (sqlstore.APIToken, error)
	ListTokens(ctx context.Context) ([]sqlstore.APIToken, error)
	RevokeToken(ctx context.Context, id string, at time.Time) error
}

// tokenStore adapts the SQL store to auth.TokenStore.
type tokenStore struct{ s sqlTokens }

// TokenStore returns the API token store of a built-in store, or nil.
func TokenStore(s Store) auth.TokenStore {
	if t, ok := s.(sqlTokens); ok {
		return tokenStore{t}
	}
	return nil
}

func (t tokenStore) CreateToken(ctx context.Context, r auth.TokenRecord) error {
	return t.s.CreateToken(ctx, sqlstore.APIToken{ID: r.ID, Hash: r.Hash, User: r.User, Role: string(r.Grant.Role), Keys: r.Grant.Keys,
		Team: r.Grant.Team, CreatedBy: r.CreatedBy, Chain: r.Chain, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt})
}

func fromSQL(a sqlstore.APIToken) auth.TokenRecord {
	return auth.TokenRecord{ID: a.ID, Hash: a.Hash, User: a.User, Grant: auth.Grant{Role: auth.Role(a.Role), Keys: a.Keys, Team: a.Team},
		CreatedBy: a.CreatedBy, Chain: a.Chain, CreatedAt: a.CreatedAt, ExpiresAt: a.ExpiresAt, RevokedAt: a.RevokedAt}
}

func (t tokenStore) TokenByHash(ctx context.Context, h string) (auth.TokenRecord, error) {
	a, err := t.s.TokenByHash(ctx, h)
	return fromSQL(a), err
}

func (t tokenStore) ListTokens(ctx context.Context) ([]auth.TokenRecord, error) {
	l, err := t.s.ListTokens(ctx)
	out := make([]auth.TokenRecord, 0, len(l))
	for _, a := range l {
		out = append(out, fromSQL(a))
	}
	return out, err
}

func (t tokenStore) RevokeToken(ctx context.Context, id string, at time.Time) error {
	return t.s.RevokeToken(ctx, id, at)
}

// sharedToken resolves a hand-configured bearer token and refuses one
// with less than 32 bytes of estimated entropy, naming its YAML path.
func sharedToken(env, file, path string) (string, error) {
	tok, err := secretref.Ref{Env: env, File: file}.Resolve()
	p := path + "_env"
	if file != "" {
		p = path + "_file"
	}
	if err != nil {
		return "", config.Errors{{Path: p, Msg: err.Error()}}
	}
	if tok.IsZero() {
		return "", nil
	}
	if bits := auth.EstimateBits(tok.Reveal()); bits < auth.MinSharedTokenBits {
		return "", config.Errors{{Path: p, Msg: fmt.Sprintf("the token is too weak (about %.0f bits of entropy, at least %d required): generate one with `openssl rand -hex 32`",
			bits, auth.MinSharedTokenBits)}}
	}
	return tok.Reveal(), nil
}

// checkSharedTokens resolves the hand-configured tokens and refuses weak
// ones (what buildAuth does), for a start that must fail before it binds.
func checkSharedTokens(cfg *config.Config) error {
	if _, err := sharedToken(cfg.Daemon.AdminTokenEnv, cfg.Daemon.AdminTokenFile, "daemon.admin_token"); err != nil {
		return err
	}
	_, err := sharedToken(cfg.Daemon.MetricsTokenEnv, cfg.Daemon.MetricsTokenFile, "daemon.metrics_token")
	return err
}

// buildAuth wires authentication from the configuration.
func (d *Daemon) buildAuth() error {
	cfg := d.Config
	d.Directory = auth.NewDirectory(cfg.Auth.Identities)
	boot, err := sharedToken(cfg.Daemon.AdminTokenEnv, cfg.Daemon.AdminTokenFile, "daemon.admin_token")
	if err != nil {
		return err
	}
	if d.metricsToken, err = sharedToken(cfg.Daemon.MetricsTokenEnv, cfg.Daemon.MetricsTokenFile, "daemon.metrics_token"); err != nil {
		return err
	}
	d.Auth = &auth.Authenticator{Tokens: TokenStore(d.Store), Bootstrap: boot,
		NotFound: func(err error) bool { return errors.Is(err, rotator.ErrNotFound) },
		Departed: d.departedLeft, RevokeDeparted: d.revokeDepartedToken}
	if o := cfg.Auth.OIDC; o != nil {
		groups := map[string][]auth.Grant{}
		for _, g := range o.Groups {
			role, _ := auth.ParseRole(g.Role) // validated
			groups[g.Group] = append(groups[g.Group], auth.Grant{Role: role, Keys: g.Keys, Team: g.Team})
		}
		d.Auth.OIDC = auth.NewOIDC(auth.OIDCConfig{Issuer: o.Issuer, Audience: o.Audience, CLIClientID: o.CLIClientID, IdentityClaim: o.IdentityClaim,
			GroupsClaim: o.GroupsClaim, Groups: groups}, d.Directory)
	}
	if err := d.buildCerts(); err != nil {
		return err
	}
	d.limiter = auth.NewLimiter(1, 10)
	d.teams = map[string]string{} // keys without a team are left out: "" either way
	for _, k := range cfg.Keys {
		if k.Team != "" {
			d.teams[k.Name] = k.Team
		}
	}
	return nil
}

// canonicalDecider makes sure only canonical identities reach the
// engine's self-approval and two-person checks, whatever the channel, and
// that none is a name rekey reserves for itself (a Slack user mapped to
// "scheduler" or "break-glass:…" by a configured identity decides nothing).
type canonicalDecider struct {
	rotator.Decider
	dir *auth.Directory
}

func (c canonicalDecider) Decide(ctx context.Context, req rotator.ApproveRequest) (*rotator.Rotation, error) {
	req.Approver = c.dir.Canonical(req.Approver)
	if err := auth.Reserved(req.Approver); err != nil {
		return nil, fmt.Errorf("%w: %w", err, rotator.ErrNotApprover)
	}
	// The engine refuses a departed approver by the identity it is given;
	// a departure that named them by an alias is checked here.
	if eng, ok := c.Decider.(*rotator.Engine); ok {
		if dep, gone, err := departed(ctx, eng, c.dir, req.Approver); err != nil {
			return nil, err
		} else if gone {
			return nil, &rotator.DepartedError{Departure: dep, What: "decisions"}
		}
	}
	return c.Decider.Decide(ctx, req)
}

// certReloader serves a certificate and key from files, re-read when
// either file's modification time changes (a renewed certificate is used
// without a restart; a broken renewal keeps the last good pair).
type certReloader struct {
	cert, key string

	mu      sync.Mutex
	mtimes  [2]time.Time
	current *tls.Certificate
}

func newCertReloader(t config.TLS) (*certReloader, error) {
	r := &certReloader{cert: t.CertFile, key: t.KeyFile}
	if _, err := r.get(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *certReloader) get() (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var mt [2]time.Time
	for i, f := range []string{r.cert, r.key} {
		st, err := os.Stat(f)
		if err != nil {
			if r.current != nil {
				return r.current, nil
			}
			return nil, fmt.Errorf("tls: %w", err)
		}
		mt[i] = st.ModTime()
	}
	if r.current != nil && mt == r.mtimes {
		return r.current, nil
	}
	c, err := tls.LoadX509KeyPair(r.cert, r.key)
	if err != nil {
		if r.current != nil {
			return r.current, nil
		}
		return nil, fmt.Errorf("tls: load %s and %s: %w", r.cert, r.key, err)
	}
	r.current, r.mtimes = &c, mt
	return r.current, nil
}

// tlsConfig returns the server TLS configuration for t, nil when off.
func tlsConfig(t config.TLS, path string) (*tls.Config, error) {
	if !t.Enabled() {
		return nil, nil
	}
	r, err := newCertReloader(t)
	if err != nil {
		return nil, config.Errors{{Path: path, Msg: err.Error()}}
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return r.get() }}
	if t.ClientCAFile != "" {
		// Ask for a certificate, verify it per request (auth.Certs): a bad
		// one is a 401 counted by the limiter, not a handshake failure.
		tc.ClientAuth = tls.RequestClientCert
	}
	return tc, nil
}
