package auditlog

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// HeadFunc returns the audit trail's head: the last event's Seq and Hash.
type HeadFunc func(ctx context.Context) (seq int64, hash string, err error)

// Writer writes a signed checkpoint of the head every interval when the head
// has moved, and one more when it stops.
type Writer struct {
	dir      string
	key      ed25519.PrivateKey
	head     HeadFunc
	interval time.Duration
	logger   *slog.Logger
	now      func() time.Time

	mu       sync.Mutex // serializes Write
	lastSeq  int64
	lastHash string
	written  bool

	stop chan struct{}
	done chan struct{}
}

// NewWriter creates dir (0700) if needed and returns a writer of
// checkpoints into it.
func NewWriter(dir string, key ed25519.PrivateKey, head HeadFunc, interval time.Duration, logger *slog.Logger) (*Writer, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit checkpoints: %w", err)
	}
	return &Writer{dir: dir, key: key, head: head, interval: interval, logger: logger, now: time.Now}, nil
}

// Write signs and writes a checkpoint of the current head, unless this
// writer already wrote one of the same head. It reports whether it wrote.
func (w *Writer) Write(ctx context.Context) (Checkpoint, bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	seq, hash, err := w.head(ctx)
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("audit checkpoint: %w", err)
	}
	if w.written && seq == w.lastSeq && hash == w.lastHash {
		return Checkpoint{}, false, nil
	}
	c := Checkpoint{Seq: seq, Hash: hash, At: w.now().UTC(), KeyID: rotator.AuditHashKeyID(hash)}
	c.Sign(w.key)
	if err := writeNew(w.dir, c.fileName(), c); err != nil {
		return Checkpoint{}, false, fmt.Errorf("audit checkpoint: %w", err)
	}
	c.File = c.fileName()
	w.lastSeq, w.lastHash, w.written = seq, hash, true
	return c, true, nil
}

// writeNew writes c to dir/name, which must not exist: through a temporary
// file, synced, then hard-linked into place (link fails on an existing
// name), so that a reader never sees a partial checkpoint and none is ever
// overwritten.
func writeNew(dir, name string, c Checkpoint) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Chmod(0o444)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// Start writes a checkpoint now and then every interval until Stop.
func (w *Writer) Start(ctx context.Context) {
	w.stop, w.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(w.done)
		t := time.NewTicker(w.interval)
		defer t.Stop()
		for {
			w.writeLogged(ctx)
			select {
			case <-ctx.Done():
				return
			case <-w.stop:
				return
			case <-t.C:
			}
		}
	}()
}

// Stop ends the periodic writes and writes a last checkpoint of the head.
func (w *Writer) Stop() {
	if w.stop != nil {
		close(w.stop)
		<-w.done
		w.stop = nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w.writeLogged(ctx)
}

func (w *Writer) writeLogged(ctx context.Context) {
	c, wrote, err := w.Write(ctx)
	switch {
	case err != nil && !errors.Is(err, context.Canceled):
		w.logger.Error("audit checkpoint not written", "dir", w.dir, "err", err)
	case wrote:
		w.logger.Info("audit checkpoint written", "file", c.File, "seq", c.Seq, "key_id", c.KeyID)
	}
}
