// Package random is rekey's embedded default issuer: it mints random secrets
// from a format template (Kubeadapt-style "ka_live_{base62:32}" by default)
// for demos and for credentials that rekey itself defines. What it has minted
// and revoked is recorded in a ledger — an append-only log of JSON lines:
// ids, names, fingerprints and times, never a secret value — synced before
// each call returns, so that revocations and FindByName survive a crash;
// Verify accepts a secret only while its fingerprint is a live entry of that
// ledger. Mint, Revoke, Verify and FindByName cost the same whatever the
// ledger's length.
//
// One ledger file belongs to one issuer instance: two instances (or two
// daemons) must not share a path.
package random

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// minEntropyBits is the randomness below which New warns that the format
// makes guessable credentials.
const minEntropyBits = 128

// Issuer mints random credentials and keeps their ledger.
type Issuer struct {
	tmpl   template
	path   string
	logger *slog.Logger
	now    func() time.Time

	mu      sync.Mutex
	entries []*entry            // in mint order
	byID    map[string]*entry   // id → entry
	byFP    map[string][]*entry // fingerprint → entries
	byName  map[string][]*entry // key NUL name → entries, in mint order
	size    int64               // the ledger's length (-1: not written by this instance yet)
}

// New parses the format, creates the ledger's directory (0700) if needed and
// loads the ledger. A nil logger discards.
func New(cfg Config, logger *slog.Logger) (*Issuer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("random: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	tmpl, _ := parseTemplate(cfg.Format) // validated above
	if err := os.MkdirAll(filepath.Dir(cfg.Ledger), 0o700); err != nil {
		return nil, fmt.Errorf("random: ledger directory: %w", err)
	}
	l, err := loadLedger(cfg.Ledger)
	if err != nil {
		return nil, fmt.Errorf("random: %w", err)
	}
	if l.torn > 0 {
		logger.Warn("random: the ledger ended with a torn record (a crash during a write); dropped it — the call that wrote it never returned",
			"ledger", cfg.Ledger, "bytes", l.torn)
	}
	if l.converted {
		logger.Info("random: converted the ledger to the append-only format", "ledger", cfg.Ledger, "credentials", len(l.entries))
	}
	if bits := tmpl.entropyBits(); bits < minEntropyBits {
		logger.Warn("random: format yields guessable credentials",
			"entropy_bits", int(bits), "recommended_bits", minEntropyBits)
	}
	i := &Issuer{tmpl: tmpl, path: cfg.Ledger, logger: logger, now: time.Now, size: -1,
		byID: map[string]*entry{}, byFP: map[string][]*entry{}, byName: map[string][]*entry{}}
	for _, e := range l.entries {
		i.index(e)
	}
	return i, nil
}

// index adds a minted entry to the look-ups.
func (i *Issuer) index(e *entry) {
	i.entries = append(i.entries, e)
	i.byID[e.ID] = e
	i.byFP[e.Fingerprint] = append(i.byFP[e.Fingerprint], e)
	i.byName[e.Key+"\x00"+e.Name] = append(i.byName[e.Key+"\x00"+e.Name], e)
}

// write appends one record to the ledger.
func (i *Issuer) write(r record) error {
	line, err := encodeRecord(r)
	if err != nil {
		return err
	}
	size, err := appendRecord(i.path, i.size, line)
	if err != nil {
		return err
	}
	i.size = size
	return nil
}

// Mint draws a new secret, records it in the ledger and returns it with an
// id of the form rnd_<16 hex>. The ledger is written before Mint returns, so
// a credential the caller may have lost in a crash is still found by
// FindByName.
func (i *Issuer) Mint(ctx context.Context, req rotator.MintRequest) (rotator.Minted, error) {
	if err := ctx.Err(); err != nil {
		return rotator.Minted{}, err
	}
	if req.Key == "" {
		return rotator.Minted{}, rotator.PermanentReason(rotator.ReasonInvalid, errors.New("random: mint: empty key"))
	}
	raw, err := i.tmpl.render(rand.Reader)
	if err != nil {
		return rotator.Minted{}, fmt.Errorf("random: mint %s: %w", req.Key, err)
	}
	id, err := randomID("rnd_")
	if err != nil {
		return rotator.Minted{}, fmt.Errorf("random: mint %s: %w", req.Key, err)
	}
	secret := rotator.NewSecret(raw)
	e := &entry{
		ID:          id,
		Key:         req.Key,
		Name:        req.Name,
		Fingerprint: secret.Fingerprint(),
		CreatedAt:   i.now().UTC(),
	}

	i.mu.Lock()
	defer i.mu.Unlock()
	if err := i.write(mintRecord(e)); err != nil {
		return rotator.Minted{}, fmt.Errorf("random: mint %s: %w", req.Key, err)
	}
	i.index(e)
	i.logger.Info("random: minted credential", "key", req.Key, "name", req.Name, "id", id,
		"fingerprint", rotator.ShortFingerprint(e.Fingerprint))
	return rotator.Minted{ID: id, Secret: secret}, nil
}

// Revoke records the revocation of ref.ID. Revoking an already revoked
// credential is success; so is an id the ledger does not know, which is
// logged.
func (i *Issuer) Revoke(ctx context.Context, ref rotator.CredentialRef) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	e := i.byID[ref.ID]
	if e == nil {
		i.logger.Warn("random: revoke of unknown credential treated as done", "key", ref.Key, "name", ref.Name, "id", ref.ID)
		return nil
	}
	if e.revoked() {
		return nil
	}
	at := i.now().UTC()
	if err := i.write(record{Op: opRevoke, ID: e.ID, RevokedAt: at}); err != nil {
		return fmt.Errorf("random: revoke %s: %w", ref.ID, err)
	}
	e.RevokedAt = at
	updated := e
	i.logger.Info("random: revoked credential", "key", updated.Key, "name", updated.Name, "id", updated.ID)
	return nil
}

// FindByName lists the ids of live (not revoked) credentials minted for key
// with the given name, oldest first.
func (i *Issuer) FindByName(ctx context.Context, key, name string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	var ids []string
	for _, e := range i.byName[key+"\x00"+name] {
		if !e.revoked() {
			ids = append(ids, e.ID)
		}
	}
	return ids, nil
}

// Verify accepts secret when its fingerprint is a live credential of key in
// the ledger; anything else is a permanent auth error, as a 401 would be.
func (i *Issuer) Verify(ctx context.Context, key string, secret rotator.Secret, _ map[string]any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if secret.IsZero() {
		return rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("random: verify %s: empty secret", key))
	}
	fp := secret.Fingerprint()
	i.mu.Lock()
	defer i.mu.Unlock()
	for _, e := range i.byFP[fp] {
		if e.Key != key {
			continue
		}
		if e.revoked() {
			return rotator.PermanentReason(rotator.ReasonAuth,
				fmt.Errorf("random: verify %s: credential %s (fingerprint %s) is revoked", key, e.ID, rotator.ShortFingerprint(fp)))
		}
		return nil
	}
	return rotator.PermanentReason(rotator.ReasonAuth,
		fmt.Errorf("random: verify %s: fingerprint %s is not a credential of this issuer", key, rotator.ShortFingerprint(fp)))
}

// IsRevoked reports whether the credential id is revoked; an id the ledger
// does not know is rotator.ErrNotFound.
func (i *Issuer) IsRevoked(id string) (bool, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if e := i.byID[id]; e != nil {
		return e.revoked(), nil
	}
	return false, fmt.Errorf("random: credential %s: %w", id, rotator.ErrNotFound)
}

// Interface guards.
var (
	_ rotator.Issuer   = (*Issuer)(nil)
	_ rotator.Finder   = (*Issuer)(nil)
	_ rotator.Verifier = (*Issuer)(nil)
)
