// Package file is the sink that delivers keys as JSON documents on the local
// filesystem, one per key at <dir>/<path or key>.json, for consumers that
// read a mounted file. Every write is atomic (temporary file, fsync, rename,
// fsync of the directory), mode 0600 in a 0700 directory, serialised per
// path inside the process and preceded by a compare with what was read, and
// the sink refuses files that lack its "managed_by": "rekey" marker unless
// configured to adopt them.
package file

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rekeyhq/rekey/internal/pathseg"
	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/rotator/slots"
)

// Sink writes keys to JSON files.
type Sink struct {
	dir    string
	adopt  bool
	logger *slog.Logger
	now    func() time.Time

	// hook, when set, runs once right before the next write (tests use it
	// to interleave a concurrent writer).
	hook atomic.Pointer[func()]
}

// New returns a file sink writing under cfg.Dir.
func New(cfg Config, logger *slog.Logger) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("dir: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Sink{dir: dir, adopt: cfg.Adopt, logger: logger.With("sink", "file"), now: time.Now}, nil
}

// Stage writes d.Secret as the pending value, or as the current one when
// the file has none.
func (s *Sink) Stage(ctx context.Context, t rotator.Target, d rotator.Delivery) error {
	return s.update(ctx, t, "stage", func(path string, doc *document) (bool, error) {
		if err := slots.CheckDelivery(d); err != nil {
			return false, fmt.Errorf("file: stage %s: %w", path, err)
		}
		now := s.now()
		next, changed := slots.Stage(doc.Slots, newEntry(d, now))
		if changed {
			s.logger.InfoContext(ctx, "staged", "key", t.Key, "path", path, "generation", d.Generation,
				"fingerprint", rotator.ShortFingerprint(d.Fingerprint), "as_current", doc.Current == nil)
			doc.set(next, now)
		}
		return changed, nil
	})
}

// Replace writes d.Secret as the only, current value (an emergency: the
// old key is revoked already), in one atomic write of the file.
func (s *Sink) Replace(ctx context.Context, t rotator.Target, d rotator.Delivery) error {
	return s.update(ctx, t, "replace", func(path string, doc *document) (bool, error) {
		if err := slots.CheckDelivery(d); err != nil {
			return false, fmt.Errorf("file: replace %s: %w", path, err)
		}
		now := s.now()
		next, changed := slots.Replace(doc.Slots, newEntry(d, now))
		if changed {
			s.logger.InfoContext(ctx, "replaced", "key", t.Key, "path", path, "generation", d.Generation,
				"fingerprint", rotator.ShortFingerprint(d.Fingerprint))
			doc.set(next, now)
		}
		return changed, nil
	})
}

// Promote makes the pending value d current and keeps the old one as
// previous.
func (s *Sink) Promote(ctx context.Context, t rotator.Target, d rotator.Delivery) error {
	return s.update(ctx, t, "promote", func(path string, doc *document) (bool, error) {
		next, changed, err := slots.Promote(doc.Slots, d)
		if err != nil {
			return false, fmt.Errorf("file: promote %s: %w", path, err)
		}
		if changed {
			s.logger.InfoContext(ctx, "promoted", "key", t.Key, "path", path, "generation", d.Generation,
				"fingerprint", rotator.ShortFingerprint(d.Fingerprint))
			doc.set(next, s.now())
		}
		return changed, nil
	})
}

// Cleanup drops the previous value and any pending value other than d.
func (s *Sink) Cleanup(ctx context.Context, t rotator.Target, d rotator.Delivery) error {
	return s.update(ctx, t, "cleanup", func(path string, doc *document) (bool, error) {
		next, changed := slots.Cleanup(doc.Slots, d)
		if changed {
			s.logger.InfoContext(ctx, "cleaned up", "key", t.Key, "path", path, "generation", d.Generation)
			doc.set(next, s.now())
		}
		return changed, nil
	})
}

// Rollback makes the value d.OldFingerprint current again and removes d.
func (s *Sink) Rollback(ctx context.Context, t rotator.Target, d rotator.Delivery) error {
	return s.update(ctx, t, "rollback", func(path string, doc *document) (bool, error) {
		next, changed, err := slots.Rollback(doc.Slots, d)
		if err != nil {
			return false, fmt.Errorf("file: rollback %s: %w", path, err)
		}
		if changed {
			s.logger.InfoContext(ctx, "rolled back", "key", t.Key, "path", path, "generation", d.Generation,
				"restored_fingerprint", rotator.ShortFingerprint(d.OldFingerprint))
			doc.set(next, s.now())
		}
		return changed, nil
	})
}

// Inspect reports the fingerprints the file holds.
func (s *Sink) Inspect(ctx context.Context, t rotator.Target) (rotator.SinkState, error) {
	_, doc, exists, err := s.read(ctx, t, "inspect", true)
	if err != nil || !exists {
		return rotator.SinkState{}, err
	}
	return rotator.SinkState{
		Exists:   true,
		Managed:  doc.managed(),
		Current:  doc.Current.Fingerprint(),
		Pending:  doc.Pending.Fingerprint(),
		Previous: doc.Previous.Fingerprint(),
	}, nil
}

// ReadPending returns the staged secret with fingerprint fp (the current
// one when a first delivery went straight to current).
func (s *Sink) ReadPending(ctx context.Context, t rotator.Target, fp string) (rotator.Secret, error) {
	path, doc, exists, err := s.read(ctx, t, "read pending", false)
	if err != nil {
		return rotator.Secret{}, err
	}
	if exists && fp != "" {
		for _, e := range []*entry{doc.Pending, doc.Current} {
			if e.Fingerprint() == fp {
				return rotator.NewSecret(e.Value), nil
			}
		}
	}
	return rotator.Secret{}, rotator.PermanentReason(rotator.ReasonInvalid,
		fmt.Errorf("file: read pending %s: no value with fingerprint %s: %w", path, rotator.ShortFingerprint(fp), rotator.ErrNotFound))
}

// ReadValue reads back the value with fingerprint fp from any slot (the
// previous one too): a person's confirmation that they revoked the old
// key is probed with it. The value is never logged.
func (s *Sink) ReadValue(ctx context.Context, t rotator.Target, fp string) (rotator.Secret, error) {
	path, doc, exists, err := s.read(ctx, t, "read value", false)
	if err != nil {
		return rotator.Secret{}, err
	}
	if exists && fp != "" {
		for _, e := range []*entry{doc.Pending, doc.Current, doc.Previous} {
			if e.Fingerprint() == fp {
				return rotator.NewSecret(e.Value), nil
			}
		}
	}
	return rotator.Secret{}, rotator.PermanentReason(rotator.ReasonInvalid,
		fmt.Errorf("file: read value %s: no value with fingerprint %s: %w", path, rotator.ShortFingerprint(fp), rotator.ErrNotFound))
}

// Remove deletes the key's file (decommission).
func (s *Sink) Remove(ctx context.Context, t rotator.Target) error {
	loc, err := s.path(t)
	if err != nil {
		return err
	}
	path := loc.String()
	unlock := lockPath(path)
	defer unlock()
	for attempt := 1; ; attempt++ {
		if err := ctxErr(ctx); err != nil {
			return s.ioError("remove", path, err)
		}
		snap, err := readSnapshot(loc)
		if err != nil {
			return s.ioError("remove", path, err)
		}
		if !snap.exists {
			return nil
		}
		if _, err := s.load(path, snap, false); err != nil {
			return err
		}
		err = remove(loc, snap, s.beforeWrite)
		if errors.Is(err, errChanged) && attempt < maxAttempts {
			continue
		}
		if err != nil {
			return s.ioError("remove", path, err)
		}
		s.logger.InfoContext(ctx, "removed", "key", t.Key, "path", path)
		return nil
	}
}

// path maps a target to its file: <dir>/<path or key>.json, refusing names
// that would leave dir (every access then goes through an os.Root on dir).
func (s *Sink) path(t rotator.Target) (location, error) {
	name := t.Path
	if name == "" {
		name = t.Key
	}
	if err := pathseg.Check(name); err != nil {
		return location{}, rotator.PermanentReason(rotator.ReasonInvalid,
			fmt.Errorf("file: target of key %q: %w: the path must be relative and stay inside %s", t.Key, err, s.dir))
	}
	clean := filepath.Clean(filepath.FromSlash(name))
	if !filepath.IsLocal(clean) {
		return location{}, rotator.PermanentReason(rotator.ReasonInvalid,
			fmt.Errorf("file: target %q of key %q: the path must be relative and stay inside %s", name, t.Key, s.dir))
	}
	if !strings.HasSuffix(clean, ".json") {
		clean += ".json"
	}
	return location{dir: s.dir, rel: clean}, nil
}

func (s *Sink) beforeWrite() {
	if f := s.hook.Swap(nil); f != nil {
		(*f)()
	}
}

// ioError classifies a filesystem failure: a permission problem needs an
// operator, anything else (a full disk, a cancelled context) is retried.
// Filesystem errors carry paths and syscall names, never file content.
func (s *Sink) ioError(op, path string, err error) error {
	err = fmt.Errorf("file: %s %s: %w", op, path, err)
	if errors.Is(err, fs.ErrPermission) {
		return rotator.PermanentReason(rotator.ReasonAuth, err)
	}
	return rotator.WithReason(rotator.ReasonTransient, err)
}

var (
	_ rotator.Sink          = (*Sink)(nil)
	_ rotator.PendingReader = (*Sink)(nil)
	_ rotator.ValueReader   = (*Sink)(nil)
	_ rotator.Remover       = (*Sink)(nil)
)
