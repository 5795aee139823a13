package sqlstore

import (
	"context"
	"errors"
	"fmt"
)

// ErrSchemaBehind is returned by NewWith with Options.NoMigrate when the
// database's schema is older than this build's: this build would have to
// migrate it, and only a daemon does that.
var ErrSchemaBehind = errors.New("database schema is older than this rekey")

// Options tune NewWith.
type Options struct {
	// NoMigrate checks the schema instead of bringing it up to date: the
	// CLI's commands open the store this way, so that running a newer
	// rekey binary by hand never migrates a database that daemons of the
	// older version still use. Only a daemon's start migrates.
	NoMigrate bool
}

// checkSchema accepts the database as it is when this build can use it
// without migrating: the same version, or newer by additive migrations
// only (the older binary of a rolling upgrade). It reads; it takes no lock.
func (s *Store) checkSchema(ctx context.Context, list []migration) error {
	var current int
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("%w: read the schema version (%v): has a rekey daemon ever started on this database?", ErrSchemaBehind, err)
	}
	if err := checkRecorded(ctx, s.db, list); err != nil {
		return err
	}
	known := list[len(list)-1].version
	switch {
	case current < known:
		return fmt.Errorf("%w: it is at version %d, this rekey needs %d; start a daemon of this version to migrate it (or run the rekey binary of the daemons' version)", ErrSchemaBehind, current, known)
	case current > known:
		return s.checkNewer(ctx, s.db, current, known)
	}
	return nil
}
