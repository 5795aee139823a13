package sqlite

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rekeyhq/rekey/store/sqlstore"
)

// TestGrowingTablesUseIndexes asks SQLite how it runs every query over the
// outbox, the inbound events and the replay guard, and the read of the
// counters (credentials, rotations, audit events): each must be served by
// an index (a SEARCH, or a SCAN of a partial index), never a scan of the
// table — its cost would grow with the history those tables keep.
func TestGrowingTablesUseIndexes(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "rekey.db"))
	// A partial index holds only the rows a query wants (pending, failed):
	// scanning it is fine; scanning any other index reads the history.
	partial := map[string]bool{}
	rows, err := s.DB().QueryContext(t.Context(), `SELECT name FROM sqlite_master WHERE type = 'index' AND sql LIKE '% WHERE %'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		partial[name] = true
	}
	rows.Close()
	for _, q := range sqlstore.GrowingTableQueries() {
		t.Run(q.Name, func(t *testing.T) {
			rows, err := s.DB().QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+q.SQL, q.Args...)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var plan []string
			for rows.Next() {
				var id, parent, unused int
				var detail string
				if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, detail)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			for _, step := range plan {
				f := strings.Fields(step)
				if len(f) < 2 || f[0] != "SCAN" || !slices.Contains(sqlstore.GrowingTables, f[1]) {
					continue
				}
				if i := slices.Index(f, "INDEX"); i < 0 || i+1 >= len(f) || !partial[f[i+1]] {
					t.Errorf("%s scans %s: plan %q", q.SQL, f[1], plan)
				}
			}
		})
	}
}
