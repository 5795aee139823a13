package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// migration is one numbered schema change. Migrations are append-only: a
// released one is never edited, a change is a new one.
type migration struct {
	version    int
	name       string
	statements []string
	// additive marks a migration that a binary knowing only the migrations
	// before it can run against unchanged (the rolling-upgrade rule, see
	// docs/HA.md): it only adds — a table, a column with a default, an
	// index — and changes the meaning of nothing older code reads or
	// writes. An older binary refuses a schema with any newer migration
	// that is not additive (ErrSchemaTooNew).
	additive bool
}

// migrations is the ordered schema history. Timestamps are fixed-width UTC
// text (see timeLayout), "" when unset: they sort and compare the same on
// SQLite and PostgreSQL. No column ever holds secret material: credentials
// are known by their issuer id and SHA-256 fingerprint only.
var migrations = []migration{
	{version: 1, name: "initial schema", statements: []string{
		`CREATE TABLE rotations (
			id                TEXT    NOT NULL PRIMARY KEY,
			key               TEXT    NOT NULL,
			trigger_kind      TEXT    NOT NULL,
			actor             TEXT    NOT NULL DEFAULT '',
			reason            TEXT    NOT NULL DEFAULT '',
			mode              TEXT    NOT NULL,
			phase             TEXT    NOT NULL,
			hold              TEXT    NOT NULL DEFAULT '',
			hold_detail       TEXT    NOT NULL DEFAULT '',
			attempts          INTEGER NOT NULL DEFAULT 0,
			next_attempt_at   TEXT    NOT NULL DEFAULT '',
			last_error        TEXT    NOT NULL DEFAULT '',
			error_reason      TEXT    NOT NULL DEFAULT '',
			old_generation    INTEGER NOT NULL DEFAULT 0,
			new_generation    INTEGER NOT NULL DEFAULT 0,
			target_generation INTEGER NOT NULL DEFAULT 0,
			drain_state       TEXT    NOT NULL DEFAULT '{}',
			watch_state       TEXT    NOT NULL DEFAULT '{}',
			outcome           TEXT    NOT NULL DEFAULT '',
			rollback_to       TEXT    NOT NULL DEFAULT '',
			created_at        TEXT    NOT NULL,
			updated_at        TEXT    NOT NULL DEFAULT '',
			phase_started_at  TEXT    NOT NULL DEFAULT '',
			finished_at       TEXT    NOT NULL DEFAULT '',
			finished          INTEGER NOT NULL DEFAULT 0 CHECK (finished IN (0, 1)),
			version           BIGINT  NOT NULL DEFAULT 0,
			lease_owner       TEXT    NOT NULL DEFAULT '',
			lease_until       TEXT    NOT NULL DEFAULT ''
		)`,
		// Invariant 6: at most one active rotation per key, enforced by the
		// database so that it holds across daemons sharing it.
		`CREATE UNIQUE INDEX rotations_one_active_per_key ON rotations (key) WHERE finished = 0`,
		`CREATE INDEX rotations_due ON rotations (next_attempt_at) WHERE finished = 0`,
		`CREATE INDEX rotations_key_created ON rotations (key, created_at)`,
		`CREATE INDEX rotations_created ON rotations (created_at)`,

		`CREATE TABLE credentials (
			key         TEXT    NOT NULL,
			generation  INTEGER NOT NULL,
			name        TEXT    NOT NULL,
			issuer_id   TEXT    NOT NULL DEFAULT '',
			fingerprint TEXT    NOT NULL DEFAULT '',
			state       TEXT    NOT NULL,
			rotation_id TEXT    NOT NULL DEFAULT '',
			created_at  TEXT    NOT NULL DEFAULT '',
			revoked_at  TEXT    NOT NULL DEFAULT '',
			CONSTRAINT credentials_key_generation UNIQUE (key, generation)
		)`,
		`CREATE INDEX credentials_fingerprint ON credentials (fingerprint)`,
		// KeyStates reads every current credential: a partial index that
		// covers the columns it reads answers it without touching the table
		// (100k keys: one index scan, no random lookups).
		`CREATE INDEX credentials_current ON credentials
			(key, generation, name, issuer_id, fingerprint, rotation_id, created_at, revoked_at, state)
			WHERE state = 'current'`,

		`CREATE TABLE approvals (
			rotation_id TEXT   NOT NULL REFERENCES rotations (id),
			gate        TEXT   NOT NULL,
			approver    TEXT   NOT NULL,
			verdict     TEXT   NOT NULL,
			via         TEXT   NOT NULL DEFAULT '',
			comment     TEXT   NOT NULL DEFAULT '',
			at          TEXT   NOT NULL DEFAULT '',
			CONSTRAINT approvals_one_decision UNIQUE (rotation_id, gate, approver)
		)`,

		`CREATE TABLE audit_events (
			seq         BIGINT NOT NULL PRIMARY KEY,
			at          TEXT   NOT NULL,
			rotation_id TEXT   NOT NULL DEFAULT '',
			key         TEXT   NOT NULL DEFAULT '',
			actor       TEXT   NOT NULL DEFAULT '',
			action      TEXT   NOT NULL,
			phase       TEXT   NOT NULL DEFAULT '',
			detail      TEXT   NOT NULL DEFAULT '{}',
			prev_hash   TEXT   NOT NULL,
			hash        TEXT   NOT NULL
		)`,
		`CREATE INDEX audit_events_rotation ON audit_events (rotation_id, seq)`,
		`CREATE INDEX audit_events_key ON audit_events (key, seq)`,
		// The head of the chain, updated in the same transaction as every
		// append: deleting the last events leaves it pointing past the end.
		`CREATE TABLE audit_head (
			id   INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
			seq  BIGINT  NOT NULL,
			hash TEXT    NOT NULL
		)`,
		`INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '')`,
	}},
	{version: 2, name: "adapter state", statements: []string{
		// rotator.StateStore: small values adapters keep across restarts
		// (a Slack message's timestamp), never secret material.
		`CREATE TABLE adapter_state (
			namespace  TEXT   NOT NULL,
			key        TEXT   NOT NULL,
			value      TEXT   NOT NULL,
			updated_at TEXT   NOT NULL,
			PRIMARY KEY (namespace, key)
		)`,
	}},
	{version: 3, name: "inbound events, replay guard, notification outbox", statements: []string{
		// rotator.InboundStore: exposure and departure reports, recorded
		// before the sender gets its 2xx (invariant 5). Tokens arrive hashed.
		`CREATE TABLE inbound_events (
			id           TEXT NOT NULL PRIMARY KEY,
			kind         TEXT NOT NULL,
			payload      TEXT NOT NULL,
			received_at  TEXT NOT NULL,
			processed_at TEXT NOT NULL DEFAULT '',
			result       TEXT NOT NULL DEFAULT ''
		)`,
		`CREATE INDEX inbound_events_pending ON inbound_events (received_at) WHERE processed_at = ''`,
		// rotator.ReplayGuard: message ids seen, until they expire.
		`CREATE TABLE replay_guard (
			namespace TEXT NOT NULL,
			id        TEXT NOT NULL,
			until     TEXT NOT NULL,
			PRIMARY KEY (namespace, id)
		)`,
		`CREATE INDEX replay_guard_until ON replay_guard (until)`,
		// The durable notification outbox: events survive a notifier outage
		// and a restart, and are delivered in order, once.
		`CREATE TABLE outbox (
			id              TEXT    NOT NULL PRIMARY KEY,
			notifier        TEXT    NOT NULL,
			seq             BIGINT  NOT NULL,
			event           TEXT    NOT NULL,
			created_at      TEXT    NOT NULL,
			attempts        INTEGER NOT NULL DEFAULT 0,
			next_attempt_at TEXT    NOT NULL,
			delivered_at    TEXT    NOT NULL DEFAULT '',
			failed          INTEGER NOT NULL DEFAULT 0,
			last_error      TEXT    NOT NULL DEFAULT ''
		)`,
		`CREATE INDEX outbox_pending ON outbox (notifier, seq) WHERE delivered_at = '' AND failed = 0`,
	}},
	{version: 4, name: "rotation requests, outbox order index", statements: []string{
		// A command (cancel, approve anyway, retry, confirm) recorded for the
		// interpreter to act on; JSON, '{}' when none.
		`ALTER TABLE rotations ADD COLUMN request TEXT NOT NULL DEFAULT '{}'`,
		// Serves the MAX(seq) look-up of every enqueue, which the partial
		// index above cannot once rows are delivered.
		`CREATE INDEX outbox_notifier_seq ON outbox (notifier, seq)`,
	}},
	{version: 5, name: "per-person API tokens", statements: []string{
		// Admin API tokens of people (issue 11). Only the SHA-256 of each
		// token is kept: the token is shown once, at creation. user is the
		// canonical identity the token acts as; keys a name pattern scoping
		// the role ('' = every key); expires_at / revoked_at '' when unset.
		`CREATE TABLE api_tokens (
			id         TEXT NOT NULL PRIMARY KEY,
			hash       TEXT NOT NULL,
			user_id    TEXT NOT NULL,
			role       TEXT NOT NULL,
			keys       TEXT NOT NULL DEFAULT '',
			team       TEXT NOT NULL DEFAULT '',
			created_by TEXT NOT NULL DEFAULT '',
			created_at TEXT NOT NULL,
			expires_at TEXT NOT NULL DEFAULT '',
			revoked_at TEXT NOT NULL DEFAULT '',
			CONSTRAINT api_tokens_hash UNIQUE (hash)
		)`,
		`CREATE INDEX api_tokens_user ON api_tokens (user_id)`,
	}},
	{version: 6, name: "contained emergencies, delivery lanes, retention indexes", statements: []string{
		// Why an emergency's revoke waits for a responder ("breaker",
		// "low_trust"); '' when it does not.
		`ALTER TABLE rotations ADD COLUMN contain TEXT NOT NULL DEFAULT ''`,
		// 0: emergencies and requests for a decision; 1: everything else.
		`ALTER TABLE outbox ADD COLUMN lane INTEGER NOT NULL DEFAULT 1`,
		`CREATE INDEX outbox_due ON outbox (notifier, lane, seq) WHERE delivered_at = '' AND failed = 0`,
		`CREATE INDEX outbox_delivered ON outbox (delivered_at) WHERE delivered_at <> ''`,
		`CREATE INDEX inbound_events_processed ON inbound_events (processed_at) WHERE processed_at <> ''`,
	}},
	{version: 7, name: "when a rotation's hold began", statements: []string{
		`ALTER TABLE rotations ADD COLUMN held_since TEXT NOT NULL DEFAULT ''`,
	}},
	{version: 8, name: "consumers seen per key", additive: true, statements: []string{
		// Which generation each consumer of a key last attested holding
		// (issue 16): the consumers traffic source and GET
		// /v1/keys/{key}/consumers read it. No secret: a generation number.
		// Rows not seen within the webhook's retention are deleted when the
		// key's consumers next attest.
		`CREATE TABLE consumers (
			key_name   TEXT    NOT NULL,
			name       TEXT    NOT NULL,
			generation INTEGER NOT NULL,
			via        TEXT    NOT NULL DEFAULT '',
			first_seen TEXT    NOT NULL,
			last_seen  TEXT    NOT NULL,
			PRIMARY KEY (key_name, name)
		)`,
		`CREATE INDEX consumers_last_seen ON consumers (key_name, last_seen)`,
	}},
	// Not additive: the lease protocol changes (expiry by the database's
	// clock, an epoch every claim increments and fenced commits check), and
	// fencing holds only if every daemon follows it. Binaries from before
	// it refuse any newer schema anyway.
	{version: 9, name: "fenced leases, cluster members", statements: []string{
		`ALTER TABLE rotations ADD COLUMN lease_epoch BIGINT NOT NULL DEFAULT 0`,
		// One row per daemon process (rotator.Member); times are the
		// database's. left_at is set by a clean stop.
		`CREATE TABLE members (
			id           TEXT    NOT NULL PRIMARY KEY,
			host         TEXT    NOT NULL DEFAULT '',
			pid          INTEGER NOT NULL DEFAULT 0,
			version      TEXT    NOT NULL DEFAULT '',
			started_at   TEXT    NOT NULL,
			heartbeat_at TEXT    NOT NULL,
			expires_at   TEXT    NOT NULL,
			left_at      TEXT    NOT NULL DEFAULT ''
		)`,
		`CREATE INDEX rotations_lease_owner ON rotations (lease_owner) WHERE finished = 0`,
	}},
	// Not additive: an older binary would drive a rotation of the
	// emergency_manual lifecycle on the plain emergency table.
	{version: 10, name: "the lifecycle table a rotation runs on", statements: []string{
		// Empty: chosen from trigger and mode, as before this column.
		`ALTER TABLE rotations ADD COLUMN lifecycle TEXT NOT NULL DEFAULT ''`,
	}},
	{version: 11, name: "what an active rotation waits for", additive: true, statements: []string{
		`ALTER TABLE rotations ADD COLUMN waiting TEXT NOT NULL DEFAULT ''`,
	}},
	{version: 12, name: "live credentials and failed notifications indexes", additive: true, statements: []string{
		// A rotation reads the credentials of its key that are still live
		// (WorkingCredentials): served by this index, the read costs the
		// same after ten or ten thousand rotations of the key.
		`CREATE INDEX credentials_live ON credentials (key, generation) WHERE state <> 'revoked'`,
		// Retention's second outbox query (notifications given up on): the
		// last one a full scan served.
		`CREATE INDEX outbox_failed ON outbox (next_attempt_at) WHERE failed = 1`,
	}},
	{version: 13, name: "counters read from the store", additive: true, statements: []string{
		// The counters of what happened to keys are read from the store at
		// scrape time (Store.Totals), so that every daemon reports every
		// rotation, whoever drove it. Each index holds only the rows one
		// count reads, with every column the count reads (SQLite needs the
		// predicate's column too to cover the read): the read scans them
		// and never the tables.
		`CREATE INDEX credentials_minted ON credentials (key, state, issuer_id) WHERE issuer_id <> ''`,
		`CREATE INDEX rotations_finished ON rotations (phase, trigger_kind, mode) WHERE finished = 1`,
		`CREATE INDEX audit_events_counted ON audit_events (action, key) WHERE action IN ('orphan.revoked', 'watch.alert')`,
	}},
	{version: 14, name: "live previous credentials index", additive: true, statements: []string{
		// KeyStates reads every key's live previous generations (plan and
		// status flag one that lingers; the gauges read it every second):
		// the few rows in state previous, never the history.
		`CREATE INDEX credentials_previous ON credentials (key, generation) WHERE state = 'previous'`,
	}},
	{version: 15, name: "the people behind an API token", additive: true, statements: []string{
		// A JSON array: the token's creator, the creator of the token they
		// used, and so on (the self-approval and two-person rules read it).
		// '' for a token created before: its created_by stands alone. An
		// older binary ignores the column and still checks created_by.
		`ALTER TABLE api_tokens ADD COLUMN created_by_chain TEXT NOT NULL DEFAULT ''`,
	}},
}

// ErrSchemaMismatch is returned by New when a migration recorded in the
// database has the version of one this build knows but another name: the
// database was migrated by a different build (one whose numbering differs),
// and taking its version as this build's would skip migrations silently.
var ErrSchemaMismatch = errors.New("database schema was migrated by a different build")

// MigrationCount is how many migrations this build knows: the rows of
// schema_migrations of an up-to-date database.
func MigrationCount() int { return len(migrations) }

// SchemaVersion is the newest schema this build knows.
func SchemaVersion() int { return migrations[len(migrations)-1].version }

// ErrSchemaTooNew is returned by New when the database was migrated by a
// newer rekey than this one with a migration this one cannot run against.
var ErrSchemaTooNew = errors.New("database schema is newer than this rekey supports")

// migrate applies the missing migrations in one transaction and records each
// in schema_migrations (and whether it is additive in schema_compat). It is
// idempotent. A database a newer rekey migrated is accepted while every
// migration past the ones this build knows is recorded additive (a rolling
// upgrade: this older daemon keeps running beside newer ones); otherwise it
// fails with ErrSchemaTooNew.
func (s *Store) migrate(ctx context.Context) error {
	return s.migrateWith(ctx, migrations)
}

func (s *Store) migrateWith(ctx context.Context, list []migration) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if s.d.MigrationLock != "" {
			if _, err := tx.ExecContext(ctx, s.d.MigrationLock); err != nil {
				return fmt.Errorf("lock: %w", err)
			}
		}
		for _, stmt := range []string{`CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER NOT NULL PRIMARY KEY,
			name       TEXT    NOT NULL,
			applied_at TEXT    NOT NULL
		)`, `CREATE TABLE IF NOT EXISTS schema_compat (
			version  INTEGER NOT NULL PRIMARY KEY,
			additive INTEGER NOT NULL CHECK (additive IN (0, 1))
		)`} {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("create schema tables: %w", err)
			}
		}
		var current int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if err := checkRecorded(ctx, tx, list); err != nil {
			return err
		}
		if known := list[len(list)-1].version; current > known {
			// Newer, additive only: run as the older binary of a rolling upgrade.
			return s.checkNewer(ctx, tx, current, known)
		}
		for _, m := range list {
			if m.version <= current {
				continue
			}
			for i, stmt := range m.statements {
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("migration %d (%s), statement %d: %w", m.version, m.name, i+1, err)
				}
			}
			if _, err := tx.ExecContext(ctx, s.d.Rebind(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`),
				m.version, m.name, TimeText(time.Now())); err != nil {
				return fmt.Errorf("record migration %d: %w", m.version, err)
			}
			additive := 0
			if m.additive {
				additive = 1
			}
			if _, err := tx.ExecContext(ctx, s.d.Rebind(`INSERT INTO schema_compat (version, additive) VALUES (?, ?)
				ON CONFLICT (version) DO UPDATE SET additive = excluded.additive`), m.version, additive); err != nil {
				return fmt.Errorf("record migration %d: %w", m.version, err)
			}
		}
		return nil
	})
}

// checkNewer refuses a database at version current, newer than this
// build's known, unless every newer migration is recorded additive.
func (s *Store) checkNewer(ctx context.Context, q rowQuerier, current, known int) error {
	var breaking int
	if err := q.QueryRowContext(ctx, s.d.Rebind(`SELECT COUNT(*) FROM schema_migrations m WHERE m.version > ?
		AND NOT EXISTS (SELECT 1 FROM schema_compat c WHERE c.version = m.version AND c.additive = 1)`), known).Scan(&breaking); err != nil {
		return fmt.Errorf("read schema compatibility: %w", err)
	}
	if breaking > 0 {
		return fmt.Errorf("%w: database is at version %d, this build knows up to %d and %d newer migration(s) are not additive; upgrade rekey", ErrSchemaTooNew, current, known, breaking)
	}
	return nil
}

// checkRecorded refuses a database whose recorded migrations differ by name
// from this build's at the same version.
func checkRecorded(ctx context.Context, tx rowQuerier, list []migration) error {
	names := make(map[int]string, len(list))
	for _, m := range list {
		names[m.version] = m.name
	}
	rows, err := tx.QueryContext(ctx, `SELECT version, name FROM schema_migrations ORDER BY version`)
	if err != nil {
		return fmt.Errorf("read schema migrations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var v int
		var name string
		if err := rows.Scan(&v, &name); err != nil {
			return fmt.Errorf("read schema migrations: %w", err)
		}
		if want, ok := names[v]; ok && want != name {
			return fmt.Errorf("%w: its migration %d is %q, this build's is %q; restore a backup taken before that build ran, or use a fresh database", ErrSchemaMismatch, v, name, want)
		}
	}
	return rows.Err()
}
