// Package vault is the sink that delivers keys to HashiCorp Vault's KV v2
// secrets engine. A key lives in one secret: consumers read the current
// field (api_key); staging writes a new version holding the new key in the
// pending field beside it, promotion a version with current=new and
// previous=old, cleanup one without previous. Every write is check-and-set
// on the version last read or written (a write's answer names the version
// it created, so the steps of one rotation chain their writes without
// reading in between) and is redone from a fresh read when another writer
// got in between; a replay that finds its work done writes nothing. An
// emergency's Replace writes the new key as the only value.
// rekey owns a secret only when its custom metadata says managed-by: rekey
// (or the sink is told to adopt). The sink logs in with a token, AppRole or
// Kubernetes auth and keeps login tokens renewed with a LifetimeWatcher,
// logging in again when they can no longer be renewed; Close stops that.
//
// The token's policy needs create, read, update and delete on
// <mount>/data/* and <mount>/metadata/*.
package vault

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"

	cleanhttp "github.com/hashicorp/go-cleanhttp"
	"github.com/hashicorp/vault/api"

	"github.com/rekeyhq/rekey/rotator"
)

// The custom metadata that marks a secret as rekey's.
const (
	markerKey   = "managed-by"
	markerValue = "rekey"
)

// maxAttempts bounds how often one call re-reads and redoes its work after
// a check-and-set failure.
const maxAttempts = 5

// Sink writes keys to Vault KV v2.
type Sink struct {
	cfg    Config
	client *api.Client
	auth   *authenticator
	logger *slog.Logger
	last   lastState

	// hook, when set, runs once right before the next write (tests use it
	// to interleave a concurrent writer).
	hook atomic.Pointer[func()]
}

// New returns a Vault sink. It does not contact Vault: the first call logs
// in, so the daemon starts even while Vault is unreachable.
func New(cfg Config, logger *slog.Logger) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("sink", "vault")
	client, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	return &Sink{
		cfg:    cfg,
		client: client,
		auth:   newAuthenticator(cfg.Auth, cfg.Namespace, client, logger),
		logger: logger,
	}, nil
}

// newClient builds an API client from cfg alone: unlike api.DefaultConfig
// it ignores the process's VAULT_* variables, and it does not retry (the
// engine owns retries).
func newClient(cfg Config) (*api.Client, error) {
	hc := cleanhttp.DefaultPooledClient()
	hc.Transport.(*http.Transport).TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	conf := &api.Config{Address: cfg.Address, HttpClient: hc, Timeout: cfg.Timeout, MaxRetries: 0}
	if err := conf.ConfigureTLS(&api.TLSConfig{
		CACert:        cfg.TLS.CAFile,
		TLSServerName: cfg.TLS.ServerName,
		Insecure:      cfg.TLS.InsecureSkipVerify,
	}); err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	client, err := api.NewClient(conf)
	if err != nil {
		return nil, fmt.Errorf("address: %w", err)
	}
	client.ClearToken()
	client.ClearNamespace()
	if cfg.Namespace != "" {
		client.SetNamespace(cfg.Namespace)
	}
	return client, nil
}

// Close stops token renewal.
func (s *Sink) Close() error {
	s.auth.close()
	return nil
}

// ref is a target resolved against the configuration.
type ref struct {
	mount, path string
	f           fields
}

// String names the secret in messages: its API path, e.g. secret/data/team/api.
func (r ref) String() string { return r.mount + "/data/" + r.path }

// resolve maps a target to its mount, path and field names. The path may
// be given relative to the mount ("team/api") or as its API path
// ("secret/data/team/api").
func (s *Sink) resolve(t rotator.Target) (ref, error) {
	r := ref{mount: s.cfg.Mount, f: fields{cur: s.cfg.CurrentField, pend: s.cfg.PendingField, prev: s.cfg.PreviousField}}
	p := t.Params
	if v := p["mount"]; v != "" {
		r.mount = v
	}
	if v := p["field"]; v != "" {
		r.f = fields{cur: v, pend: v + "_pending", prev: v + "_previous"}
	}
	for name, dst := range map[string]*string{"current_field": &r.f.cur, "pending_field": &r.f.pend, "previous_field": &r.f.prev} {
		if v := p[name]; v != "" {
			*dst = v
		}
	}
	r.mount = strings.Trim(r.mount, "/")
	path := t.Path
	if path == "" {
		path = t.Key
	}
	path = strings.TrimPrefix(strings.Trim(path, "/"), r.mount+"/data/")
	r.path = path
	switch {
	case path == "" || r.mount == "":
		return r, rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("vault: key %q: no secret path", t.Key))
	case checkSegments(r.mount) != nil || checkSegments(path) != nil:
		// The request path is built only from checked segments: a ".."
		// would be resolved by the client and reach another mount.
		return r, rotator.PermanentReason(rotator.ReasonInvalid,
			fmt.Errorf("vault: key %q: %w", t.Key, errors.Join(checkSegments(r.mount), checkSegments(path))))
	case r.f.cur == r.f.pend || r.f.cur == r.f.prev || r.f.pend == r.f.prev:
		return r, rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("vault: %s: the current, pending and previous fields must differ", r))
	}
	return r, nil
}

func (s *Sink) beforeWrite() {
	if f := s.hook.Swap(nil); f != nil {
		(*f)()
	}
}

// do runs one request after making sure the client is logged in. A 403 on
// a token that can be refreshed (a login, or a token file that an agent
// rewrites) logs in again and retries once.
func (s *Sink) do(ctx context.Context, what string, sent []string, req func() (*api.Secret, error)) (*api.Secret, error) {
	if err := s.auth.ensure(ctx); err != nil {
		return nil, err
	}
	sec, err := req()
	if isStatus(err, http.StatusForbidden) && s.auth.refreshable() {
		s.logger.InfoContext(ctx, "permission denied; logging in again", "request", what)
		s.auth.invalidate()
		if err := s.auth.ensure(ctx); err != nil {
			return nil, err
		}
		sec, err = req()
	}
	switch {
	case isCASMismatch(err):
		return nil, errCAS
	case err != nil:
		return nil, classify(what, err, sent...)
	}
	return sec, nil
}

// Interface guards.
var (
	_ rotator.Sink          = (*Sink)(nil)
	_ rotator.PendingReader = (*Sink)(nil)
	_ rotator.ValueReader   = (*Sink)(nil)
	_ rotator.Remover       = (*Sink)(nil)
	_ rotator.Replacer      = (*Sink)(nil)
)
