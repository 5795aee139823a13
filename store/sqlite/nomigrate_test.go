package sqlite

import (
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/rekeyhq/rekey/store/sqlstore"
)

// The CLI opens the store with NoMigrate: a database its build would
// migrate is refused with ErrSchemaBehind and left exactly as it was, so
// that a newer binary run by hand never migrates under older daemons; a
// database at this build's version, or newer by additive migrations only,
// opens.
func TestNoMigrateNeverChangesTheSchema(t *testing.T) {
	dir := t.TempDir()
	noMigrate := func(path string) (*sqlstore.Store, error) {
		return OpenWith(t.Context(), path, Options{NoMigrate: true})
	}
	versions := func(path string) (n, max int) {
		db, err := noMigrateRaw(path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.QueryRowContext(t.Context(), `SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&n, &max); err != nil {
			t.Fatal(err)
		}
		return n, max
	}

	t.Run("up to date", func(t *testing.T) {
		path := filepath.Join(dir, "current.db")
		open(t, path).Close()
		s, err := noMigrate(path)
		if err != nil {
			t.Fatalf("NoMigrate on an up-to-date database: %v", err)
		}
		s.Close()
	})
	t.Run("behind", func(t *testing.T) {
		path := filepath.Join(dir, "behind.db")
		s := open(t, path)
		if _, err := s.DB().ExecContext(t.Context(), `DELETE FROM schema_migrations WHERE version = ?`, sqlstore.SchemaVersion()); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if _, err := noMigrate(path); !errors.Is(err, sqlstore.ErrSchemaBehind) {
			t.Fatalf("NoMigrate on a database one version behind = %v, want ErrSchemaBehind", err)
		}
		if _, max := versions(path); max != sqlstore.SchemaVersion()-1 {
			t.Fatalf("schema version after a refused open: %d, want it left at %d", max, sqlstore.SchemaVersion()-1)
		}
	})
	t.Run("no schema at all", func(t *testing.T) {
		path := filepath.Join(dir, "empty.db")
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := noMigrate(path); !errors.Is(err, sqlstore.ErrSchemaBehind) {
			t.Fatalf("NoMigrate on an empty file = %v, want ErrSchemaBehind", err)
		}
		db, err := noMigrateRaw(path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var tables int
		if err := db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'`).Scan(&tables); err != nil || tables != 0 {
			t.Fatalf("%d tables after a refused open (%v), want none", tables, err)
		}
	})
	t.Run("newer", func(t *testing.T) {
		for name, additive := range map[string]int{"additive": 1, "breaking": 0} {
			path := filepath.Join(dir, "newer-"+name+".db")
			s := open(t, path)
			next := sqlstore.SchemaVersion() + 1
			if _, err := s.DB().ExecContext(t.Context(), `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'from the future', '')`, next); err != nil {
				t.Fatal(err)
			}
			if _, err := s.DB().ExecContext(t.Context(), `INSERT INTO schema_compat (version, additive) VALUES (?, ?)`, next, additive); err != nil {
				t.Fatal(err)
			}
			s.Close()
			s, err := noMigrate(path)
			switch {
			case additive == 1 && err != nil:
				t.Errorf("NoMigrate on a database newer by an additive migration: %v", err)
			case additive == 0 && !errors.Is(err, sqlstore.ErrSchemaTooNew):
				t.Errorf("NoMigrate on a database newer by a breaking migration = %v, want ErrSchemaTooNew", err)
			}
			if s != nil {
				s.Close()
			}
			if n, max := versions(path); max != next || n != sqlstore.MigrationCount()+1 {
				t.Errorf("%s: schema_migrations %d rows up to %d after the open", name, n, max)
			}
		}
	})
}

// noMigrateRaw opens path with the driver alone, to look at it.
func noMigrateRaw(path string) (*sql.DB, error) { return sql.Open("sqlite", path) }
