package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rekeyhq/rekey/auth"
	"github.com/rekeyhq/rekey/rotator"
)

// A person reported as having left (POST /v1/events/departure) keeps no
// way to act through rekey: the engine records them in its state store
// (rekey.departed, shared by every daemon on the store) and refuses their
// decisions and requests; here, their API tokens are revoked when the
// departure is processed (Options.OnDeparted) and any credential of
// theirs — API token, OIDC token, client certificate — is refused at
// authentication (auth.Authenticator.Departed), a token presented then
// being revoked on the spot if the first pass missed it.

// departed reports whether the person id names left: Engine.Departed of
// their canonical identity or any auth.identities alias of it (a
// departure may name them by user id while their credentials name their
// email). It reads the store at every call: a departure another daemon
// received counts at once.
func departed(ctx context.Context, eng *rotator.Engine, dir *auth.Directory, id string) (rotator.Departure, bool, error) {
	if eng == nil {
		return rotator.Departure{}, false, nil
	}
	for _, name := range dir.Names(id) {
		if dep, gone, err := eng.Departed(ctx, name); err != nil || gone {
			return dep, gone, err
		}
	}
	return rotator.Departure{}, false, nil
}

// departedLeft is auth's view of departed.
func (d *Daemon) departedLeft(ctx context.Context, id string) (*auth.Left, error) {
	dep, gone, err := departed(ctx, d.Engine, d.Directory, id)
	if err != nil || !gone {
		return nil, err
	}
	return &auth.Left{Reason: dep.String(), By: dep.Actor()}, nil
}

// liveRevoker is the built-in stores' conditional revocation: it revokes
// a token only where it is not revoked yet and says whether it did.
type liveRevoker interface {
	RevokeLiveToken(ctx context.Context, id string, at time.Time) (bool, error)
}

// revokeDepartedToken revokes one API token of a person who left, audited
// as token.revoked by the departure (reason departure), unless it is
// revoked already: the store revokes it only where it is still live, and
// only the caller that changed the row audits it, so that daemons
// processing one departure at once write one event per revocation.
func (d *Daemon) revokeDepartedToken(ctx context.Context, tokenID, user string, left auth.Left) error {
	s, ok := d.Store.(liveRevoker)
	if !ok || TokenStore(d.Store) == nil {
		return nil
	}
	revoked, err := s.RevokeLiveToken(ctx, tokenID, timeNow())
	if errors.Is(err, rotator.ErrNotFound) || err == nil && !revoked {
		return nil
	}
	if err != nil {
		return err
	}
	d.Logger.Info("api token of a person who left revoked", "token_id", tokenID, "user", user, "by", left.By)
	return d.auditToken(ctx, "token.revoked", left.By, map[string]string{"token_id": tokenID, "user": user, "reason": "departure",
		"departure": left.Reason})
}

// revokeTokensOf revokes every live API token of the person a departure
// names (compared canonically, aliases of auth.identities included), and
// returns what stays working that they may still hold a copy of: the live
// tokens someone else holds that they created (or that were created
// through a token of theirs), and the shared secrets of this daemon they
// may have known. Those are not revoked: that would lock out every robot
// and person they made tokens for; the departure lists them for a person
// to decide.
func (d *Daemon) revokeTokensOf(ctx context.Context, dep rotator.Departure) ([]string, error) {
	s := TokenStore(d.Store)
	if s == nil {
		return d.sharedSecrets(), nil
	}
	list, err := s.ListTokens(ctx)
	if err != nil {
		return nil, fmt.Errorf("list api tokens: %w", err)
	}
	names := map[string]bool{auth.Canonical(dep.Who): true, d.Directory.Canonical(dep.Who): true}
	left := auth.Left{Reason: dep.String(), By: dep.Actor()}
	now := timeNow()
	var remaining []string
	for _, t := range list {
		if !t.Live(now) {
			continue
		}
		if !names[auth.Canonical(t.User)] && !names[d.Directory.Canonical(t.User)] {
			if slices.ContainsFunc(auth.ChainOf(t), func(p string) bool { return names[p] || names[d.Directory.Canonical(p)] }) {
				remaining = append(remaining, fmt.Sprintf("API token %s of %s (%s, created by %s): revoke it with `rekey token revoke %s` if they may have kept it",
					t.ID, t.User, t.Grant.Role, t.CreatedBy, t.ID))
			}
			continue
		}
		if err := d.revokeDepartedToken(ctx, t.ID, t.User, left); err != nil {
			return nil, fmt.Errorf("revoke api token %s of %s: %w", t.ID, t.User, err)
		}
	}
	return append(remaining, d.sharedSecrets()...), nil
}

// sharedSecrets names the secrets of this daemon that are not a person's
// own, which anyone who could read its configuration may know.
func (d *Daemon) sharedSecrets() []string {
	var out []string
	if d.Auth != nil && d.Auth.Bootstrap != "" {
		out = append(out, "the bootstrap admin token (daemon.admin_token)")
	}
	if d.metricsToken != "" {
		out = append(out, "the metrics token (daemon.metrics_token)")
	}
	var hooks []string
	for _, w := range d.Config.Webhooks {
		hooks = append(hooks, w.Name)
	}
	if len(hooks) > 0 {
		out = append(out, "the signing secrets of webhooks "+strings.Join(hooks, ", "))
	}
	if len(out) == 0 {
		return nil
	}
	return []string{"rotate the shared secrets they may have known: " + strings.Join(out, ", ")}
}
