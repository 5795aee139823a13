// Package postgres opens rekey's PostgreSQL store, for several daemons
// sharing one database (high availability), through pgx's database/sql driver
// behind the shared implementation of rotator.Store in store/sqlstore.
// PostgreSQL enforces the cross-daemon invariants: one active rotation per key
// (a partial unique index) and one audit chain (appends lock the audit_head
// row with SELECT … FOR UPDATE).
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/rekeyhq/rekey/store/sqlstore"
)

// migrationLockID is the advisory lock that serializes the migrations of
// daemons starting at once against a fresh database ("rekey" in ASCII).
const migrationLockID = 0x72656b6579

// Dialect is PostgreSQL's: $n placeholders, the audit head locked FOR UPDATE
// by every appender, and migrations under an advisory lock.
var Dialect = sqlstore.Dialect{
	Name:                 "postgres",
	NumberedPlaceholders: true,
	LockRow:              " FOR UPDATE",
	MigrationLock:        fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", migrationLockID),
	IsUniqueViolation:    isUniqueViolation,
	// clock_timestamp, not now(): the time of the statement, not of the
	// transaction's start. Microseconds, padded to nanoseconds.
	NowPlus: `(to_char((clock_timestamp() AT TIME ZONE 'UTC') + CAST(? AS BIGINT) * INTERVAL '1 millisecond', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '000Z')`,
}

func isUniqueViolation(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == "23505" // unique_violation
}

// maxConns bounds the pool: a daemon needs few connections, and several
// daemons share the server's max_connections.
const maxConns = 10

// Open connects to the database named by dsn (a libpq URL or key=value
// string; put the password in PGPASSWORD or a passfile, not in
// configuration) and brings its schema up to date.
func Open(ctx context.Context, dsn string) (*sqlstore.Store, error) {
	return OpenWith(ctx, dsn, sqlstore.Options{})
}

// OpenWith is Open with options: with o.NoMigrate the schema is checked,
// never changed (what the CLI's commands open).
func OpenWith(ctx context.Context, dsn string, o sqlstore.Options) (*sqlstore.Store, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		// pgx's parse errors never echo the password.
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("postgres store: connect: %w: %w", sqlstore.ErrUnreachable, err)
	}
	s, err := sqlstore.NewWith(ctx, db, Dialect, o)
	if err != nil {
		_ = db.Close()
		return nil, err // already "postgres store: …"
	}
	return s, nil
}
