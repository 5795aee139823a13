// Package http is a generic REST issuer, described entirely in
// configuration so that it works with any SaaS that has an admin API: how to
// mint a key (and where the id and the secret are in the answer), how to
// revoke one by id, how to list keys by name (to find what a crash between
// minting and recording left behind) and, optionally, how to probe a key with
// a data API call. Every answer is classified for the engine: a configured
// success, 429/5xx retryable (with the upstream's Retry-After noted), 401/403
// permanent with reason auth, anything else permanent with reason invalid.
// Neither the admin token nor a minted secret ever appears in an error or a
// log line; the body of a mint answer is never quoted.
package http

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	nethttp "net/http"
	"net/url"
	"slices"
	"text/template"
	"time"

	"github.com/rekeyhq/rekey/issuers/internal/probe"
	"github.com/rekeyhq/rekey/issuers/internal/webapi"
	"github.com/rekeyhq/rekey/rotator"
)

// Issuer mints, revokes, lists and verifies credentials through a
// configured admin API.
type Issuer struct {
	log     *slog.Logger
	base    *url.URL
	client  *nethttp.Client
	auth    []secretHeader
	headers map[string]*template.Template

	mint, revoke, list *request

	mintIDPath, mintSecretPath string
	idemHeader                 string        // "": no header (a template may still send the key)
	idemWindow                 time.Duration // how long the API keeps a key; 0: the key is not sent
	alreadyRevoked             webapi.StatusSet
	itemsPath, idPath          string
	namePath, statusPath       string
	revokedStatuses            []string

	probe *probe.Probe // nil: no verify configured
	now   func() time.Time
}

// New checks cfg and builds the issuer. Admin credentials are read once
// here, so that a missing variable or file fails at start-up, and again
// before every request.
func New(cfg Config, logger *slog.Logger) (*Issuer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	base, _ := url.Parse(cfg.BaseURL) // validated
	client, err := webapi.NewClient(cfg.Timeout, cfg.CAFile)
	if err != nil {
		return nil, err
	}
	is := &Issuer{
		log:            logger.With("issuer", "http"),
		base:           base,
		client:         client,
		headers:        compileHeaders("headers", cfg.Headers),
		mint:           compile("mint", cfg.Mint.Request, DefaultMintSuccess),
		revoke:         compile("revoke", cfg.Revoke.Request, DefaultRevokeSuccess),
		list:           compile("list", cfg.List.Request, DefaultListSuccess),
		mintIDPath:     cfg.Mint.IDPath,
		mintSecretPath: cfg.Mint.SecretPath,
		idemHeader:     nethttp.CanonicalHeaderKey(cfg.Mint.IdempotencyKeyHeader),
		idemWindow:     cfg.Mint.IdempotencyWindow,
		itemsPath:      cfg.List.ItemsPath,
		idPath:         cfg.List.IDPath,
		namePath:       cfg.List.NamePath,
		statusPath:     cfg.List.StatusPath,
		now:            time.Now,
	}
	if is.idemHeader == "" && len(keyTemplates(cfg)) == 0 {
		is.idemWindow = 0 // validated: no window is configured then
	}
	is.alreadyRevoked, _ = cfg.Revoke.AlreadyRevoked.Parse("revoke.already_revoked")
	is.revokedStatuses = cfg.List.RevokedStatuses
	if len(is.revokedStatuses) == 0 {
		is.revokedStatuses = DefaultRevokedStatuses
	}
	for i, a := range append([]Auth{cfg.Auth}, cfg.SecretHeaders...) {
		if _, err := a.Ref().Resolve(); err != nil {
			field := "auth"
			if i > 0 {
				field = fmt.Sprintf("secret_headers[%d]", i-1)
			}
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		is.auth = append(is.auth, secretHeader{name: nethttp.CanonicalHeaderKey(a.Header), prefix: a.Prefix, ref: a.Ref()})
	}
	if cfg.Verify != nil {
		pc := *cfg.Verify
		if pc.Timeout == 0 {
			pc.Timeout = cfg.Timeout
		}
		if pc.CAFile == "" {
			pc.CAFile = cfg.CAFile
		}
		if is.probe, err = probe.New(pc, "http", base); err != nil {
			return nil, err
		}
	}
	return is, nil
}

// Mint creates the credential named req.Name.
func (is *Issuer) Mint(ctx context.Context, req rotator.MintRequest) (rotator.Minted, error) {
	what := "http: mint " + req.Name
	d := Data{Key: req.Key, Name: req.Name, Generation: req.Generation, RotationID: req.RotationID, PreviousID: req.Previous.ID, Params: req.Params,
		IdempotencyKey: req.IdempotencyKey}
	hreq, resp, err := is.send(ctx, is.mint, d, what)
	if err != nil {
		return rotator.Minted{}, err
	}
	if !is.mint.success.Has(resp.Status) {
		if is.idemWindow > 0 && resp.Status == nethttp.StatusConflict {
			// draft-ietf-httpapi-idempotency-key-header: the key's first
			// request is still being processed; retry it unchanged.
			return rotator.Minted{}, fmt.Errorf("%s: HTTP 409: a request with the same idempotency key is still in flight at the issuer", what)
		}
		err := is.fail(what, is.mint, hreq, resp)
		if is.idemWindow > 0 && resp.Header.Get("Idempotent-Replayed") == "true" {
			// The API stored the key's first answer, a failure, and
			// replays it for the key's window: the same key cannot
			// succeed (the engine mints under a new one).
			err = rotator.ReplayedFailure(fmt.Errorf("%w (replayed for idempotency key %s)", err, req.IdempotencyKey))
		}
		return rotator.Minted{}, err
	}
	// The answer holds the secret: nothing of it is quoted below.
	created := fmt.Sprintf("HTTP %d, the credential may exist at the issuer", resp.Status)
	doc, err := webapi.DecodeJSON(resp.Body)
	if err != nil {
		return rotator.Minted{}, rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("%s: %s: %w", what, created, err))
	}
	v, _ := webapi.Lookup(doc, is.mintIDPath)
	id, ok := webapi.Scalar(v)
	if !ok {
		return rotator.Minted{}, rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("%s: %s: no id at mint.id_path %q", what, created, is.mintIDPath))
	}
	v, _ = webapi.Lookup(doc, is.mintSecretPath)
	secret, ok := v.(string)
	if !ok || secret == "" {
		return rotator.Minted{}, rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("%s: %s (id %s): no string at mint.secret_path %q", what, created, id, is.mintSecretPath))
	}
	s := rotator.NewSecret(secret)
	is.log.InfoContext(ctx, "minted credential", "key", req.Key, "name", req.Name, "id", id,
		"fingerprint", rotator.ShortFingerprint(s.Fingerprint()), "replayed", resp.Header.Get("Idempotent-Replayed") == "true")
	return rotator.Minted{ID: id, Secret: s}, nil
}

// IdempotencyWindow implements rotator.IdempotentMinter: how long the API
// keeps the idempotency key mint sends (in mint.idempotency_key_header or
// through {{.IdempotencyKey}} in a mint template); zero when the key is
// not sent.
func (is *Issuer) IdempotencyWindow() time.Duration { return is.idemWindow }

// Revoke revokes ref.ID. A status in revoke.already_revoked is success.
func (is *Issuer) Revoke(ctx context.Context, ref rotator.CredentialRef) error {
	what := "http: revoke " + ref.ID
	if ref.Name != "" {
		what += " (" + ref.Name + ")"
	}
	if ref.ID == "" {
		return rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("http: revoke %s: no issuer id recorded", ref.Name))
	}
	d := Data{Key: ref.Key, Name: ref.Name, Generation: ref.Generation, ID: ref.ID, Params: ref.Params}
	hreq, resp, err := is.send(ctx, is.revoke, d, what)
	if err != nil {
		return err
	}
	switch {
	case is.revoke.success.Has(resp.Status):
		is.log.InfoContext(ctx, "revoked credential", "key", ref.Key, "name", ref.Name, "id", ref.ID)
		return nil
	case is.alreadyRevoked.Has(resp.Status):
		is.log.InfoContext(ctx, "credential already revoked", "key", ref.Key, "name", ref.Name, "id", ref.ID, "status", resp.Status)
		return nil
	}
	return is.fail(what, is.revoke, hreq, resp)
}

// FindByName lists the ids of the live credentials named name: items whose
// list.name_path equals name (filtered here too, whatever the server did)
// and whose list.status_path, when configured, is not a revoked status.
func (is *Issuer) FindByName(ctx context.Context, key, name string) ([]string, error) {
	what := "http: list " + name
	hreq, resp, err := is.send(ctx, is.list, Data{Key: key, Name: name}, what)
	if err != nil {
		return nil, err
	}
	if !is.list.success.Has(resp.Status) {
		return nil, is.fail(what, is.list, hreq, resp)
	}
	invalid := func(format string, args ...any) error {
		return rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("%s: HTTP %d: "+format, append([]any{what, resp.Status}, args...)...))
	}
	doc, err := webapi.DecodeJSON(resp.Body)
	if err != nil {
		return nil, invalid("%v", err)
	}
	v, _ := webapi.Lookup(doc, is.itemsPath)
	items, ok := v.([]any)
	if !ok {
		return nil, invalid("no list at list.items_path %q", is.itemsPath)
	}
	ids := []string{}
	for i, item := range items {
		v, _ := webapi.Lookup(item, is.namePath)
		if n, _ := webapi.Scalar(v); n != name {
			continue
		}
		if is.statusPath != "" {
			v, _ := webapi.Lookup(item, is.statusPath)
			if st, _ := webapi.Scalar(v); slices.Contains(is.revokedStatuses, st) {
				continue
			}
		}
		v, _ = webapi.Lookup(item, is.idPath)
		id, ok := webapi.Scalar(v)
		if !ok {
			// A live credential we cannot name is one we could not revoke:
			// say so rather than report nothing.
			return nil, invalid("item %d named %s has no id at list.id_path %q", i, name, is.idPath)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// Verify probes secret with the configured verify request. Without one it
// returns a permanent error: a key with verify: true needs a probe.
func (is *Issuer) Verify(ctx context.Context, key string, secret rotator.Secret, params map[string]any) error {
	if is.probe == nil {
		return rotator.PermanentReason(rotator.ReasonInvalid, errors.New("http: verify "+key+": no verify probe configured for this issuer"))
	}
	return is.probe.Check(ctx, key, secret, params)
}

// VerifyConfigured reports whether a verify probe is configured; the engine
// skips verification (with an audit note) when it is not.
func (is *Issuer) VerifyConfigured() bool { return is.probe != nil }

var (
	_ rotator.Issuer           = (*Issuer)(nil)
	_ rotator.Finder           = (*Issuer)(nil)
	_ rotator.Verifier         = (*Issuer)(nil)
	_ rotator.IdempotentMinter = (*Issuer)(nil)
)
