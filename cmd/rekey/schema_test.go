package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rekeyhq/rekey/store/sqlite"
	"github.com/rekeyhq/rekey/store/sqlstore"
)

// A newer rekey binary run by hand never migrates the store the daemons
// share: status refuses a store whose schema is older than its build and
// says why; doctor reports it (the daemon of this version migrates it at
// start) and still checks the adapters. The schema is left as it was.
func TestCommandsNeverMigrateTheStore(t *testing.T) {
	dir, cfg := cliConfig(t)
	path := filepath.Join(dir, "rekey.db")
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	behind := sqlstore.SchemaVersion() - 1
	if _, err := st.DB().Exec(`DELETE FROM schema_migrations WHERE version > ?`, behind); err != nil {
		t.Fatal(err)
	}
	schema := func() int {
		var v int
		if err := st.DB().QueryRow(`SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	defer st.Close()

	code, out, errOut := runCLI(t, "", "status", "-c", cfg)
	if code == exitOK || !strings.Contains(errOut, "older than this rekey") || !strings.Contains(errOut, "never migrate") {
		t.Fatalf("status on an older schema: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "", "doctor", "-c", cfg)
	if code != exitOK || !strings.Contains(out, "migrates it at start; doctor changed nothing") || !strings.Contains(out, "issuer rnd") {
		t.Fatalf("doctor on an older schema: exit %d\n%s%s", code, out, errOut)
	}
	if v := schema(); v != behind {
		t.Fatalf("the schema moved to version %d, want it left at %d", v, behind)
	}
}
