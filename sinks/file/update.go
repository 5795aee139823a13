package file

import (
	"context"
	"errors"
	"fmt"

	"github.com/rekeyhq/rekey/rotator"
)

// update runs one read-modify-write of t's document under the path's lock:
// read the file, apply fn, and — only if fn changed something — replace the
// file atomically, provided it still holds what was read. When another
// writer got there first the whole step is redone from a fresh read, a
// bounded number of times.
func (s *Sink) update(ctx context.Context, t rotator.Target, op string, fn func(path string, doc *document) (bool, error)) error {
	loc, err := s.path(t)
	if err != nil {
		return err
	}
	path := loc.String()
	unlock := lockPath(path)
	defer unlock()
	for attempt := 1; ; attempt++ {
		if err := ctxErr(ctx); err != nil {
			return s.ioError(op, path, err)
		}
		snap, err := readSnapshot(loc)
		if err != nil {
			return s.ioError(op, path, err)
		}
		doc, err := s.load(path, snap, false)
		if err != nil {
			return err
		}
		changed, err := fn(path, doc)
		if err != nil || !changed {
			return err
		}
		doc.ManagedBy, doc.Key = managedBy, t.Key
		content, err := doc.encode()
		if err != nil {
			return rotator.PermanentReason(rotator.ReasonInternal, fmt.Errorf("file: %s %s: encode the document", op, path))
		}
		err = replace(loc, snap, content, s.beforeWrite)
		switch {
		case errors.Is(err, errChanged) && attempt < maxAttempts:
			s.logger.DebugContext(ctx, "file changed under us, redoing the step", "op", op, "path", path, "attempt", attempt)
			continue
		case errors.Is(err, errChanged):
			return rotator.WithReason(rotator.ReasonConflict,
				fmt.Errorf("file: %s %s: %w after %d attempts: %w", op, path, errChanged, attempt, rotator.ErrConflict))
		case err != nil:
			return s.ioError(op, path, err)
		}
		return nil
	}
}

// read loads t's document under the path's lock without writing.
// allowUnmanaged lets Inspect look at files rekey does not own.
func (s *Sink) read(ctx context.Context, t rotator.Target, op string, allowUnmanaged bool) (path string, doc *document, exists bool, err error) {
	loc, err := s.path(t)
	if err != nil {
		return "", nil, false, err
	}
	path = loc.String()
	if err := ctxErr(ctx); err != nil {
		return path, nil, false, s.ioError(op, path, err)
	}
	unlock := lockPath(path)
	defer unlock()
	snap, err := readSnapshot(loc)
	if err != nil {
		return path, nil, false, s.ioError(op, path, err)
	}
	doc, err = s.load(path, snap, allowUnmanaged)
	return path, doc, snap.exists, err
}

// load decodes a snapshot and enforces ownership: a file without the
// marker is refused unless the sink adopts (or the caller only looks).
func (s *Sink) load(path string, snap snapshot, allowUnmanaged bool) (*document, error) {
	if !snap.exists {
		return &document{}, nil
	}
	lenient := allowUnmanaged || s.adopt
	doc, isJSON, err := decodeDocument(snap.raw)
	switch {
	case !isJSON && lenient:
		return &document{}, nil
	case !isJSON:
		return nil, notManaged(path, "it is not a JSON document")
	case err != nil && lenient && !doc.managed():
		return &document{}, nil
	case err != nil:
		return nil, rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("file: %s: %w", path, err))
	case !doc.managed() && !lenient:
		return nil, notManaged(path, `it has no "managed_by": "rekey"`)
	}
	return doc, nil
}

// notManaged refuses a file rekey does not own.
func notManaged(path, why string) error {
	return rotator.PermanentReason(rotator.ReasonNotManaged,
		fmt.Errorf("file: %s: %w (%s; set adopt: true to take it over)", path, rotator.ErrNotManaged, why))
}
