package sqlstore

import (
	"context"
	"time"
)

// checkpointEvery is how often the background checkpointer copies the
// write-ahead log into the database (Dialect.Checkpoint).
const checkpointEvery = 250 * time.Millisecond

// startCheckpointer runs the dialect's checkpoint statement every
// checkpointEvery until Close. SQLite otherwise checkpoints inside the
// commit that fills the log past its threshold, fsyncs included, while
// that commit holds the write lock: every few hundred commits one waited
// milliseconds, and so did whatever queued behind it (the lease of an
// exposure's revoke). A passive checkpoint here runs beside the writers;
// the log's own threshold stays as the backstop should this fall behind.
func (s *Store) startCheckpointer() {
	if s.d.Checkpoint == "" {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.stopCheckpointer = func() { cancel(); <-done }
	go func() {
		defer close(done)
		t := time.NewTicker(checkpointEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				// Errors (busy, closing) are retried on the next tick.
				_, _ = s.db.ExecContext(ctx, s.d.Checkpoint)
			}
		}
	}()
}
