package vault

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/rekeyhq/rekey/internal/secretref"
	"github.com/rekeyhq/rekey/rotator"
)

// loginTimeout bounds a background re-login after a token's lifetime ended.
const loginTimeout = 30 * time.Second

// authenticator gives the client a valid token: a configured token, or one
// obtained by logging in (AppRole, Kubernetes). A renewable login token is
// renewed by a LifetimeWatcher; when it can no longer be renewed (max TTL,
// revoked, Vault unreachable at renewal time) the authenticator logs in
// again at once, or at the latest on the next request.
type authenticator struct {
	cfg       AuthConfig
	namespace string
	client    *api.Client
	logger    *slog.Logger

	mu      sync.Mutex
	valid   bool
	expires time.Time          // zero when the token has no known expiry
	stop    context.CancelFunc // stops the current watcher
	closed  bool
	wg      sync.WaitGroup

	logins atomic.Int64 // successful logins, for tests and metrics
}

func newAuthenticator(cfg AuthConfig, namespace string, client *api.Client, logger *slog.Logger) *authenticator {
	return &authenticator{cfg: cfg, namespace: namespace, client: client, logger: logger}
}

// expiryMargin is how long before its expiry a token is replaced.
func expiryMargin(lease time.Duration) time.Duration { return lease / 10 }

// ensure makes sure the client holds a token that is not known to be
// expired, logging in when needed.
func (a *authenticator) ensure(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return rotator.PermanentReason(rotator.ReasonInternal, errors.New("vault: the sink is closed"))
	}
	if a.valid && (a.expires.IsZero() || time.Now().Before(a.expires)) {
		return nil
	}
	return a.loginLocked(ctx)
}

// invalidate forgets the token so that the next request logs in again.
func (a *authenticator) invalidate() {
	a.mu.Lock()
	a.valid = false
	a.mu.Unlock()
}

// refreshable reports whether logging in again can yield a different token.
func (a *authenticator) refreshable() bool {
	return a.cfg.Method != AuthToken || a.cfg.TokenFile != ""
}

func (a *authenticator) close() {
	a.mu.Lock()
	a.closed = true
	if a.stop != nil {
		a.stop()
		a.stop = nil
	}
	a.mu.Unlock()
	a.wg.Wait()
}

func (a *authenticator) loginLocked(ctx context.Context) error {
	if a.stop != nil {
		a.stop()
		a.stop = nil
	}
	if a.cfg.Method == AuthToken {
		tok, err := a.cfg.token().Resolve()
		if err != nil {
			return rotator.PermanentReason(rotator.ReasonAuth, fmt.Errorf("vault: token: %w", err))
		}
		a.client.SetToken(tok.Reveal())
		a.valid, a.expires = true, time.Time{}
		a.logins.Add(1)
		return nil
	}

	body, err := a.loginBody()
	if err != nil {
		return err
	}
	path := "auth/" + strings.Trim(a.cfg.mount(), "/") + "/login"
	what := fmt.Sprintf("vault: login with %s at %s", a.cfg.Method, path)
	login, err := a.client.Clone() // no token: a login is unauthenticated
	if err != nil {
		return rotator.PermanentReason(rotator.ReasonInternal, fmt.Errorf("%s: clone client", what))
	}
	login.ClearToken()
	if a.namespace != "" {
		login.SetNamespace(a.namespace)
	}
	sec, err := login.Logical().WriteWithContext(ctx, path, body)
	if err != nil {
		err = classify(what, err, sentValues(body)...)
		if isBadCredential(err) {
			// Vault 1.13's AppRole answers a wrong secret id with a 500.
			return rotator.PermanentReason(rotator.ReasonAuth, err)
		}
		return err
	}
	if sec == nil || sec.Auth == nil || sec.Auth.ClientToken == "" {
		return rotator.PermanentReason(rotator.ReasonAuth, fmt.Errorf("%s: the response holds no token", what))
	}
	a.client.SetToken(sec.Auth.ClientToken)
	lease := time.Duration(sec.Auth.LeaseDuration) * time.Second
	a.valid, a.expires = true, time.Time{}
	if lease > 0 {
		a.expires = time.Now().Add(lease - expiryMargin(lease))
	}
	a.logins.Add(1)
	a.logger.InfoContext(ctx, "logged in to vault", "method", a.cfg.Method, "ttl", lease, "renewable", sec.Auth.Renewable)
	if sec.Auth.Renewable {
		a.watchLocked(sec, lease)
	}
	return nil
}

// loginBody builds the login request of the AppRole or Kubernetes method.
// Secrets (secret id, service account JWT) are read at every login: files
// may be rotated under us.
func (a *authenticator) loginBody() (map[string]any, error) {
	switch a.cfg.Method {
	case AuthAppRole:
		body := map[string]any{"role_id": a.cfg.RoleID}
		if ref := a.cfg.secretID(); !ref.IsZero() {
			sid, err := ref.Resolve()
			if err != nil {
				return nil, rotator.PermanentReason(rotator.ReasonAuth, fmt.Errorf("vault: approle secret_id: %w", err))
			}
			body["secret_id"] = sid.Reveal()
		}
		return body, nil
	case AuthKubernetes:
		jwt, err := secretref.Ref{File: a.cfg.JWTFile}.Resolve()
		if err != nil {
			return nil, rotator.PermanentReason(rotator.ReasonAuth, fmt.Errorf("vault: kubernetes jwt: %w", err))
		}
		return map[string]any{"role": a.cfg.Role, "jwt": strings.TrimSpace(jwt.Reveal())}, nil
	}
	return nil, rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("vault: unknown auth method %q", a.cfg.Method))
}

// watchLocked renews a login token until it can no longer be renewed, then
// logs in again.
func (a *authenticator) watchLocked(sec *api.Secret, lease time.Duration) {
	w, err := a.client.NewLifetimeWatcher(&api.LifetimeWatcherInput{Secret: sec})
	if err != nil {
		a.logger.Warn("cannot renew the vault token; it will be replaced when it expires", "err", err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.stop = cancel
	a.wg.Add(1)
	go w.Start()
	go func() {
		defer a.wg.Done()
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case r := <-w.RenewCh():
				if r == nil || r.Secret == nil || r.Secret.Auth == nil {
					continue
				}
				lease = time.Duration(r.Secret.Auth.LeaseDuration) * time.Second
				a.mu.Lock()
				if ctx.Err() == nil && lease > 0 {
					a.expires = r.RenewedAt.Add(lease - expiryMargin(lease))
				}
				a.mu.Unlock()
				a.logger.Debug("renewed the vault token", "ttl", lease)
			case err := <-w.DoneCh():
				a.relogin(ctx, err)
				return
			}
		}
	}()
}

// relogin replaces a token whose lifetime ended. If the login fails, the
// next request tries again.
func (a *authenticator) relogin(watchCtx context.Context, cause error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed || watchCtx.Err() != nil {
		return // closed, or a newer login already replaced this token
	}
	a.valid = false
	if cause != nil {
		a.logger.Info("vault token renewal stopped; logging in again", "reason", classify("vault: renew token", cause).Error())
	} else {
		a.logger.Info("vault token reached its maximum TTL; logging in again")
	}
	ctx, cancel := context.WithTimeout(context.Background(), loginTimeout)
	defer cancel()
	if err := a.loginLocked(ctx); err != nil {
		a.logger.Warn("vault re-login failed; the next request tries again", "err", err)
	}
}

// isBadCredential recognises a login refused for its credentials, whatever
// the status Vault chose for it.
func isBadCredential(err error) bool {
	msg := strings.ToLower(err.Error())
	for _, m := range []string{"invalid secret id", "invalid role id", "invalid role or secret id", "permission denied"} {
		if strings.Contains(msg, m) {
			return true
		}
	}
	return false
}
