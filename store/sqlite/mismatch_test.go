package sqlite

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/rekeyhq/rekey/store/sqlstore"
)

// A database migrated by a build whose migration numbers differ (a branch
// build that gave version 8 to another change) is refused by name, not
// taken as up to date: trusting its highest version would skip this
// build's migrations silently.
func TestRefusesSchemaMigratedByAnotherBuild(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rekey.db")
	s := open(t, path)
	if _, err := s.DB().ExecContext(t.Context(), `UPDATE schema_migrations SET name = 'live credentials and failed notifications indexes' WHERE version = 8`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(t.Context(), path); !errors.Is(err, sqlstore.ErrSchemaMismatch) {
		t.Fatalf("Open = %v, want ErrSchemaMismatch", err)
	}
}
