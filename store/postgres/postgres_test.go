package postgres

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/store/sqlstore"
	"github.com/rekeyhq/rekey/store/sqlstore/storetest"
	"github.com/rekeyhq/rekey/testing/testenv"
)

// TestMain shares one PostgreSQL cluster between the tests; each test (and
// each conformance subtest) gets a database of its own.
func TestMain(m *testing.M) { testenv.Main(m) }

func open(t *testing.T, dsn string) *sqlstore.Store {
	t.Helper()
	s, err := Open(t.Context(), dsn)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	pg := testenv.Postgres(t)
	storetest.Run(t, func(t *testing.T) rotator.Store { return open(t, pg.CreateDatabase(t)) })
}

// TestShared runs the multi-daemon tests through two connection pools on
// one database, as two rekey daemons would.
func TestShared(t *testing.T) {
	pg := testenv.Postgres(t)
	storetest.RunShared(t, func(t *testing.T) (rotator.Store, rotator.Store) {
		dsn := pg.CreateDatabase(t)
		return open(t, dsn), open(t, dsn)
	})
}

// TestConcurrentFirstStart starts eight daemons at once against a fresh
// database: the advisory lock lets one migrate and the others find the
// schema in place.
func TestConcurrentFirstStart(t *testing.T) {
	dsn := testenv.Postgres(t).CreateDatabase(t)
	const n = 8
	stores := make([]*sqlstore.Store, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = Open(t.Context(), dsn)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("daemon %d: %v", i, err)
			continue
		}
		defer stores[i].Close()
	}
	s := open(t, dsn)
	var rows, version int
	if err := s.DB().QueryRowContext(t.Context(), `SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&rows, &version); err != nil {
		t.Fatal(err)
	}
	if rows != sqlstore.MigrationCount() || version != sqlstore.SchemaVersion() {
		t.Errorf("schema_migrations: %d rows up to %d, want %d up to %d", rows, version, sqlstore.MigrationCount(), sqlstore.SchemaVersion())
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	dsn := testenv.Postgres(t).CreateDatabase(t)
	s := open(t, dsn)
	if _, err := s.DB().ExecContext(t.Context(), `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, 'from the future', 0)`,
		sqlstore.SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(t.Context(), dsn)
	if err == nil {
		s2.Close()
		t.Fatal("opened a database with a newer schema")
	}
	if !errors.Is(err, sqlstore.ErrSchemaTooNew) {
		t.Fatalf("error %v does not wrap ErrSchemaTooNew", err)
	}
}

// The CLI's NoMigrate open of a database one version behind is refused
// and migrates nothing (a newer binary run by hand beside older daemons);
// an up-to-date one opens.
func TestNoMigrateNeverChangesTheSchema(t *testing.T) {
	dsn := testenv.Postgres(t).CreateDatabase(t)
	s := open(t, dsn)
	if s2, err := OpenWith(t.Context(), dsn, sqlstore.Options{NoMigrate: true}); err != nil {
		t.Fatalf("NoMigrate on an up-to-date database: %v", err)
	} else {
		s2.Close()
	}
	if _, err := s.DB().ExecContext(t.Context(), `DELETE FROM schema_migrations WHERE version = $1`, sqlstore.SchemaVersion()); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenWith(t.Context(), dsn, sqlstore.Options{NoMigrate: true}); !errors.Is(err, sqlstore.ErrSchemaBehind) {
		t.Fatalf("NoMigrate one version behind = %v, want ErrSchemaBehind", err)
	}
	var max int
	if err := s.DB().QueryRowContext(t.Context(), `SELECT MAX(version) FROM schema_migrations`).Scan(&max); err != nil || max != sqlstore.SchemaVersion()-1 {
		t.Fatalf("schema version after a refused open: %d (%v), want it left at %d", max, err, sqlstore.SchemaVersion()-1)
	}
}

// TestNoPlaintextInTables records a whole rotation whose new secret the
// store only saw as a fingerprint, then reads every row of every table as
// text and searches it for the secret.
func TestNoPlaintextInTables(t *testing.T) {
	s := open(t, testenv.Postgres(t).CreateDatabase(t))
	secret := storetest.NewSecret()
	storetest.RecordRun(t, s, "billing", secret)
	rows, err := s.DB().QueryContext(t.Context(), `SELECT tablename FROM pg_tables WHERE schemaname = current_schema()`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	if len(tables) < 6 {
		t.Fatalf("found only tables %v", tables)
	}
	var all strings.Builder
	for _, table := range tables {
		var dump *string
		if err := s.DB().QueryRowContext(t.Context(), `SELECT string_agg(t::text, E'\n') FROM "`+table+`" t`).Scan(&dump); err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		if dump != nil {
			all.WriteString(*dump)
		}
	}
	if strings.Contains(all.String(), secret.Reveal()) {
		t.Fatal("the plaintext secret is in the database")
	}
	if !strings.Contains(all.String(), secret.Fingerprint()) {
		t.Fatal("the fingerprint is not in the database either: the search proves nothing")
	}
}

func TestOpenErrorHidesPassword(t *testing.T) {
	port := testenv.FreePort(t) // nothing listens there
	const password = "hunter2-do-not-print"
	_, err := Open(t.Context(), "postgres://rekey:"+password+"@127.0.0.1:"+strconv.Itoa(port)+"/rekey?sslmode=disable&connect_timeout=2")
	if err == nil {
		t.Fatal("connected to a closed port")
	}
	if strings.Contains(err.Error(), password) {
		t.Fatalf("the error shows the password: %v", err)
	}
}
