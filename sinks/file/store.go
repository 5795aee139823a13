package file

import (
	"bytes"
	"context"
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

// snapshot is what a read found: the bytes, or that there was no file.
type snapshot struct {
	raw    []byte
	exists bool
}

func readSnapshot(path string) (snapshot, error) {
	raw, err := os.ReadFile(path)
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

// replace writes content to path atomically unless the file no longer
// holds what was read (errChanged): a temporary file in the same directory,
// mode 0600, fsync, a compare of the file's content with the snapshot, a
// rename over path, and an fsync of the directory so the rename survives a
// crash. A reader sees the old document or the new one, never a mix.
func replace(path string, was snapshot, content []byte, beforeWrite func()) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return err
	}
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
	now, err := readSnapshot(path)
	if err != nil {
		return err
	}
	if !now.equal(was) {
		return errChanged
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

// remove deletes path unless it changed since it was read.
func remove(path string, was snapshot, beforeWrite func()) error {
	beforeWrite()
	now, err := readSnapshot(path)
	if err != nil {
		return err
	}
	if !now.equal(was) {
		return errChanged
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
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
