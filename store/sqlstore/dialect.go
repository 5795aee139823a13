package sqlstore

import (
	"strconv"
	"strings"
)

// Dialect holds what differs between the databases sqlstore runs on. The SQL
// itself is portable (upserts with INSERT … ON CONFLICT … DO UPDATE, partial
// unique indexes, integer timestamps); the driver-specific parts live in the
// packages that open a database (store/sqlite, store/postgres), which is why
// this package imports no driver.
type Dialect struct {
	// Name names the database in error messages: "sqlite", "postgres".
	Name string
	// NumberedPlaceholders rewrites the ? placeholders of every query as
	// $1, $2, … (PostgreSQL).
	NumberedPlaceholders bool
	// LockRow is appended to the query that reads the audit head inside a
	// write transaction, so that concurrent appenders, in this process or
	// another, queue on it until commit (PostgreSQL: " FOR UPDATE"). Leave it
	// empty where write transactions are serialized already (SQLite opened
	// with BEGIN IMMEDIATE).
	LockRow string
	// MigrationLock, when set, is executed first in the migration
	// transaction to serialize concurrent first starts of several daemons
	// (PostgreSQL: a transaction-scoped advisory lock). SQLite needs none:
	// its write transactions are exclusive.
	MigrationLock string
	// IndexHints lets a query name the index that serves it (SQLite's
	// INDEXED BY): a planner without statistics otherwise prefers a unique
	// index over a partial one that reads a fraction of the rows.
	IndexHints bool
	// LocalWriteLock serializes this process's write transactions on a
	// Go-side lock before they reach the database. For SQLite it turns
	// in-process contention into a queue instead of busy-timeout polling;
	// other processes still queue on the database lock.
	LocalWriteLock bool
	// Checkpoint, when set, is run in the background every
	// checkpointEvery (SQLite: a passive WAL checkpoint), so that no
	// commit checkpoints while it holds the write lock.
	Checkpoint string
	// IsUniqueViolation reports whether err is a unique-constraint
	// violation (SQLite extended codes 1555/2067, PostgreSQL SQLSTATE 23505).
	IsUniqueViolation func(error) bool
	// NowPlus is an SQL expression of the database's current time plus a
	// number of milliseconds (its one ? placeholder), as timestamp text in
	// the store's layout (see TimeText): leases and heartbeats are judged
	// by the database's clock, never a daemon's, so that clock skew between
	// hosts moves no expiry.
	NowPlus string
}

// indexedBy returns the hint that makes the dialect use index, or "".
func (d Dialect) indexedBy(index string) string {
	if !d.IndexHints {
		return ""
	}
	return " INDEXED BY " + index
}

// Rebind rewrites the ? placeholders of query for the dialect. Question marks
// inside single-quoted literals, double-quoted identifiers and comments are
// left alone.
func (d Dialect) Rebind(query string) string {
	if !d.NumberedPlaceholders || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'' || c == '"':
			j := i + 1
			for j < len(query) && query[j] != c {
				j++
			}
			if j < len(query) {
				j++ // include the closing quote; a doubled quote reopens on the next loop
			}
			b.WriteString(query[i:j])
			i = j - 1
		case c == '-' && i+1 < len(query) && query[i+1] == '-':
			j := strings.IndexByte(query[i:], '\n')
			if j < 0 {
				j = len(query) - i
			}
			b.WriteString(query[i : i+j])
			i += j - 1
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
