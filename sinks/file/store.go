package file

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// maxAttempts bounds how often one call re-reads and redoes its work after
// the file changed under it.
const maxAttempts = 5

// errChanged reports that the file changed between our read and our write.
var errChanged = errors.New("changed since read")

// locks holds one mutex per absolute file path, shared by every Sink in the
// process, so two sinks configured on the same directory serialise too.
var locks sync.Map // string → *sync.Mutex

func lockPath(path string) (unlock func()) {
	m, _ := locks.LoadOrStore(path, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// location is one file under the sink's directory: every access goes
// through an os.Root opened on dir, so that no name — a "..", a symlink
// planted in dir — can reach a file outside it.
type location struct {
	dir string // absolute
	rel string // relative to dir, local (filepath.IsLocal)
}

// String is the file's path, for messages and the per-path lock.
func (l location) String() string { return filepath.Join(l.dir, l.rel) }

// openRoot opens the sink's directory, creating it (mode 0700) if create.
func (l location) openRoot(create bool) (*os.Root, error) {
	if create {
		if err := os.MkdirAll(l.dir, 0o700); err != nil {
			return nil, err
		}
	}
	return os.OpenRoot(l.dir)
}

// snapshot is what a read found: the bytes, or that there was no file.
type snapshot struct {
	raw    []byte
	exists bool
}

func readSnapshot(l location) (snapshot, error) {
	root, err := l.openRoot(false)
	if errors.Is(err, fs.ErrNotExist) {
		return snapshot{}, nil
	}
	if err != nil {
		return snapshot{}, err
	}
	defer root.Close()
	return readIn(root, l.rel)
}

func readIn(root *os.Root, rel string) (snapshot, error) {
	raw, err := root.ReadFile(rel)
	switch {
	case err == nil:
		return snapshot{raw: raw, exists: true}, nil
	case errors.Is(err, fs.ErrNotExist):
		return snapshot{}, nil
	}
	return snapshot{}, err
}

func (s snapshot) equal(o snapshot) bool {
	return s.exists == o.exists && bytes.Equal(s.raw, o.raw)
}

// replace writes content to the file atomically unless it no longer holds
// what was read (errChanged): a temporary file in the same directory, mode
// 0600, fsync, a compare of the file's content with the snapshot, a rename
// over the file, and an fsync of the directory so the rename survives a
// crash. A reader sees the old document or the new one, never a mix.
func replace(l location, was snapshot, content []byte, beforeWrite func()) (err error) {
	root, err := l.openRoot(true)
	if err != nil {
		return err
	}
	defer root.Close()
	dir := filepath.Dir(l.rel)
	if err := root.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmpName, tmp, err := createTemp(root, dir, "."+filepath.Base(l.rel)+".tmp-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = root.Remove(tmpName)
		}
	}()
	if _, err := tmp.Write(content); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	beforeWrite()
	now, err := readIn(root, l.rel)
	if err != nil {
		return err
	}
	if !now.equal(was) {
		return errChanged
	}
	if err := root.Rename(tmpName, l.rel); err != nil {
		return err
	}
	return syncDir(root, dir)
}

// createTemp creates a new file, mode 0600, named prefix plus a random
// suffix in dir under root (os.Root has no CreateTemp).
func createTemp(root *os.Root, dir, prefix string) (string, *os.File, error) {
	for range 10 {
		name := filepath.Join(dir, prefix+rand.Text()[:10])
		f, err := root.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return name, f, err
	}
	return "", nil, errors.New("create a temporary file: too many name collisions")
}

// remove deletes the file unless it changed since it was read.
func remove(l location, was snapshot, beforeWrite func()) error {
	beforeWrite()
	root, err := l.openRoot(false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer root.Close()
	now, err := readIn(root, l.rel)
	if err != nil {
		return err
	}
	if !now.equal(was) {
		return errChanged
	}
	if err := root.Remove(l.rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return syncDir(root, filepath.Dir(l.rel))
}

func syncDir(root *os.Root, dir string) error {
	d, err := root.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// ctxErr returns the context's error, if it is done.
func ctxErr(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	default:
		return nil
	}
}
