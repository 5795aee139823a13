// Package sqlite opens rekey's embedded default store: a single SQLite file
// through the pure-Go modernc.org/sqlite driver (no cgo), in WAL mode, behind
// the shared database/sql implementation of rotator.Store in store/sqlstore.
// Several daemons on one host may share the file; write transactions start
// with BEGIN IMMEDIATE and queue on SQLite's lock under a busy timeout.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"modernc.org/sqlite"

	"github.com/rekeyhq/rekey/store/sqlstore"
)

// Memory is the path of a private in-memory database, for tests.
const Memory = ":memory:"

// busyTimeoutMS bounds how long a statement waits for another connection's
// (or process's) write lock before failing with SQLITE_BUSY.
const busyTimeoutMS = 10000

// Pragmas of every connection.
//
//   - journal_mode=WAL: readers never block the writer and the writer never
//     blocks readers.
//   - synchronous=NORMAL by default (Options.Synchronous): in WAL mode a
//     commit survives a process crash (kill -9: it is in the WAL, in the OS
//     page cache) without an fsync per commit; only a power loss or kernel
//     panic can lose the last commits. rekey is built to recover from that
//     too: every step is idempotent, and a lost mint intent is found again by
//     the credential's deterministic name and revoked (issuers that can list
//     their credentials). FULL fsyncs every commit — choose it with
//     store.synchronous: full where even that window is unacceptable (it
//     roughly triples the cost of a rotation's bookkeeping).
//   - foreign_keys=1: approvals must name an existing rotation.
//   - wal_autocheckpoint=10000 pages (40 MB): the store checkpoints in
//     the background every 250 ms (Dialect.Checkpoint), beside the
//     writers; a commit checkpoints (holding the write lock) only if that
//     falls behind.
//   - _txlock=immediate: every write transaction takes the write lock at BEGIN,
//     so two daemons never both read the audit head and then fight to upgrade
//     (which SQLite would fail with SQLITE_BUSY instead of waiting).
const filePragmas = "_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)&_pragma=synchronous(%s)" +
	"&_pragma=foreign_keys(1)&_txlock=immediate&_pragma=wal_autocheckpoint(10000)"

// Dialect is SQLite's: ? placeholders, and write transactions already
// exclusive (BEGIN IMMEDIATE), additionally queued in-process so that
// concurrent goroutines wait on a Go lock instead of busy-timeout polling.
var Dialect = sqlstore.Dialect{
	Name:              "sqlite",
	LocalWriteLock:    true,
	Checkpoint:        "PRAGMA wal_checkpoint(PASSIVE)",
	IndexHints:        true,
	IsUniqueViolation: isUniqueViolation,
	// strftime's %f is seconds with milliseconds: padded to nanoseconds.
	NowPlus: `(strftime('%Y-%m-%dT%H:%M:%f', 'now', printf('%+.3f seconds', CAST(? AS INTEGER) / 1000.0)) || '000000Z')`,
}

// isUniqueViolation matches SQLITE_CONSTRAINT_UNIQUE and
// SQLITE_CONSTRAINT_PRIMARYKEY (extended result codes are on in the driver).
func isUniqueViolation(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	const constraintUnique, constraintPrimaryKey = 2067, 1555
	return e.Code() == constraintUnique || e.Code() == constraintPrimaryKey
}

// Open opens (creating it if needed) the SQLite database at path and brings
// its schema up to date. A new file is created 0600 and a missing parent
// directory 0700: the store holds no secret, but its audit trail and key
// inventory are nobody else's business. Memory (":memory:") opens a private
// in-memory database on a single connection, which every caller shares.
func Open(ctx context.Context, path string) (*sqlstore.Store, error) {
	return OpenWith(ctx, path, Options{})
}

// Options tune Open.
type Options struct {
	// Synchronous is "normal" (default) or "full"; see the package doc.
	Synchronous string
	// NoMigrate checks the schema instead of migrating it
	// (sqlstore.Options): what the CLI's commands open.
	NoMigrate bool
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, path string, o Options) (*sqlstore.Store, error) {
	sync := "NORMAL"
	switch strings.ToLower(o.Synchronous) {
	case "", "normal":
	case "full":
		sync = "FULL"
	default:
		return nil, fmt.Errorf("sqlite store: synchronous must be normal or full, got %q", o.Synchronous)
	}
	var (
		dsn      string
		maxConns int
	)
	switch {
	case path == "":
		return nil, errors.New("sqlite store: a path is required")
	case path == Memory:
		// One connection: a second one would open a second, empty database.
		dsn = fmt.Sprintf("%s?_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)", Memory, busyTimeoutMS)
		maxConns = 1
	default:
		if strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") {
			return nil, fmt.Errorf("sqlite store: %s: give a plain file path (no URI, no '?' or '#')", path)
		}
		if err := prepareFile(path); err != nil {
			return nil, err
		}
		dsn = path + "?" + fmt.Sprintf(filePragmas, busyTimeoutMS, sync)
		maxConns = 8
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if path != Memory {
		var mode string
		if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("sqlite store: open %s: %w", path, err)
		}
		if !strings.EqualFold(mode, "wal") {
			_ = db.Close()
			return nil, fmt.Errorf("sqlite store: open %s: journal mode is %q, not wal (a file system without shared memory?)", path, mode)
		}
	}
	s, err := sqlstore.NewWith(ctx, db, Dialect, sqlstore.Options{NoMigrate: o.NoMigrate})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("%w (database %s)", err, path)
	}
	return s, nil
}

// prepareFile creates path's directory (0700) and the file itself (0600)
// when they do not exist; SQLite gives its -wal and -shm files the mode of
// the database file. Existing modes are left as the operator set them.
func prepareFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("sqlite store: create directory of %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("sqlite store: create %s: %w", path, err)
	}
	return f.Close()
}
