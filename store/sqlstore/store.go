// Package sqlstore implements rotator.Store once, over database/sql, for
// every database rekey supports: SQLite (store/sqlite, the embedded default)
// and PostgreSQL (store/postgres, for several daemons sharing one database).
// What differs between them is a small Dialect; the schema, its numbered
// migrations and every query are plain portable SQL. The database enforces
// the invariants that must hold across daemons — one active rotation per key
// (a partial unique index), optimistic concurrency on rotations (a version
// column) and one unbroken, hash-chained audit trail (appends serialized on
// the audit_head row) — and it never holds secret material.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/rekeyhq/rekey/rotator"
)

// ErrUnreachable marks an open that failed because the database did not
// answer (down, restarting, no writable primary yet): worth waiting for.
var ErrUnreachable = errors.New("database unreachable")

// Store is a rotator.Store over a *sql.DB.
type Store struct {
	db *sql.DB
	d  Dialect
	// wlock serializes this process's write transactions when the dialect
	// asks for it (a channel, so that waiting honours ctx).
	wlock chan struct{}
	// keyStates is the size of the last KeyStates answer, to size the next.
	keyStates atomic.Int64
	stmts     stmtCache
	cache     bool
	// auditKeys seal appended audit events and verify the trail.
	auditKeys rotator.AuditKeys
	// stopCheckpointer stops the background checkpoints (nil: none).
	stopCheckpointer func()
}

// NewWith wraps db, which the Store owns from now on (Close closes it), and
// brings its schema up to date; with o.NoMigrate it checks the schema
// instead (ErrSchemaBehind when it is older). It fails with
// ErrSchemaTooNew when the database was migrated by a newer rekey.
func NewWith(ctx context.Context, db *sql.DB, d Dialect, o Options) (*Store, error) {
	if d.Name == "" || d.IsUniqueViolation == nil || strings.Count(d.NowPlus, "?") != 1 {
		return nil, errors.New("sqlstore: dialect needs a Name, IsUniqueViolation and NowPlus")
	}
	s := &Store{db: db, d: d}
	if d.LocalWriteLock {
		s.wlock = make(chan struct{}, 1)
	}
	if o.NoMigrate {
		if err := s.checkSchema(ctx, migrations); err != nil {
			return nil, fmt.Errorf("%s store: %w", d.Name, err)
		}
	} else if err := s.migrate(ctx); err != nil {
		return nil, fmt.Errorf("%s store: migrate: %w", d.Name, err)
	}
	// Statement caching is for SQLite (pgx caches statements itself). It
	// needs a second pooled connection: a write transaction holds one while
	// a statement is prepared on the pool, which is safe only with the
	// in-process write lock (one writer at a time) and more than one
	// connection.
	s.cache = d.LocalWriteLock && db.Stats().MaxOpenConnections != 1
	if db.Stats().MaxOpenConnections != 1 { // a single connection: the checkpoint would queue behind every query
		s.startCheckpointer()
	}
	return s, nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// DB returns the underlying handle, for tests and operational tooling.
func (s *Store) DB() *sql.DB { return s.db }

// Dialect returns the store's dialect.
func (s *Store) Dialect() Dialect { return s.d }

// Close closes the database handle.
func (s *Store) Close() error {
	if s.stopCheckpointer != nil {
		s.stopCheckpointer()
	}
	s.closeStmts()
	return s.db.Close()
}

// errorf prefixes errors with the store's name.
func (s *Store) errorf(format string, args ...any) error {
	return fmt.Errorf(s.d.Name+" store: "+format, args...)
}

// q rebinds a query for the dialect.
func (s *Store) q(query string) string { return s.d.Rebind(query) }

// write runs fn in a write transaction: committed when fn returns nil,
// rolled back otherwise.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if s.wlock != nil {
		select {
		case s.wlock <- struct{}{}:
			defer func() { <-s.wlock }()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Timestamps are stored as fixed-width UTC text with nine fractional digits,
// "2006-01-02T15:04:05.000000000Z", and the zero time as "". Fixed width makes
// text order time order on SQLite and PostgreSQL alike (every value has its
// punctuation at the same places, so even a locale collation compares the
// digits), and it keeps every instant from year 1 to 9999 to the nanosecond.
// Unix nanoseconds in a BIGINT would stop at 2262, short of the year-9999
// "far future" the engine parks held rotations at; RFC3339Nano trims
// trailing zeros and does not sort.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

var (
	minTime = time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC) // the zero time is stored as ""
	maxTime = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
)

// TimeText returns t as the store writes it (see timeLayout): for tests and
// tools that query the tables directly. Times outside years 1–9999 are
// clamped; checkTime refuses them where exactness matters.
func TimeText(t time.Time) string {
	switch {
	case t.IsZero():
		return ""
	case t.Before(minTime):
		t = minTime
	case t.After(maxTime):
		t = maxTime
	}
	return t.UTC().Format(timeLayout)
}

// timeCol scans a stored time into *t.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(src any) error {
	var v string
	switch src := src.(type) {
	case string:
		v = src
	case []byte:
		v = string(src)
	case nil:
	default:
		return fmt.Errorf("time column holds a %T", src)
	}
	if v == "" {
		*c.t = time.Time{}
		return nil
	}
	if t, ok := parseTimeText(v); ok {
		*c.t = t
		return nil
	}
	t, err := time.Parse(timeLayout, v)
	if err != nil {
		return fmt.Errorf("time column: %w", err)
	}
	*c.t = t
	return nil
}

// parseTimeText parses exactly timeLayout, several times faster than
// time.Parse: KeyStates reads 100,000 of these.
func parseTimeText(v string) (time.Time, bool) {
	if len(v) != len(timeLayout) || v[4] != '-' || v[7] != '-' || v[10] != 'T' || v[13] != ':' || v[16] != ':' || v[19] != '.' || v[29] != 'Z' {
		return time.Time{}, false
	}
	ok := true
	num := func(from, to int) int {
		n := 0
		for i := from; i < to; i++ {
			c := v[i]
			if c < '0' || c > '9' {
				ok = false
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	year, month, day := num(0, 4), num(5, 7), num(8, 10)
	hour, minute, sec, nsec := num(11, 13), num(14, 16), num(17, 19), num(20, 29)
	if !ok || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	if t.Day() != day { // 31 February and the like: let time.Parse report it
		return time.Time{}, false
	}
	return t, true
}

// checkTime refuses a time the store cannot keep exactly.
func checkTime(field string, t time.Time) error {
	if t.IsZero() || (!t.Before(minTime) && !t.After(maxTime)) {
		return nil
	}
	return fmt.Errorf("%s is outside the years 1-9999", field)
}

// clean makes v storable byte for byte everywhere: PostgreSQL's TEXT takes
// neither NUL bytes nor invalid UTF-8, and the audit detail goes through JSON,
// which would replace invalid UTF-8 after the hash was computed.
func clean(v string) string {
	if utf8.ValidString(v) && strings.IndexByte(v, 0) < 0 {
		return v
	}
	return strings.ToValidUTF8(strings.ReplaceAll(v, "\x00", ""), "\uFFFD")
}

// scanner is *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// Interface guards.
var (
	_ rotator.Store      = (*Store)(nil)
	_ rotator.StateStore = (*Store)(nil)
)
