package postgres

import (
	"strings"
	"testing"

	"github.com/rekeyhq/rekey/store/sqlstore"
	"github.com/rekeyhq/rekey/testing/testenv"
)

// TestGrowingTablesUseIndexes asks PostgreSQL how it runs every query over
// the outbox, the inbound events and the replay guard, and the read of the
// counters (credentials, rotations, audit events). Its planner reads a
// small table sequentially whatever the indexes, so sequential scans are
// priced out (enable_seqscan = off): a plan that still scans one of those
// tables has no index that serves it, and its cost would grow with the
// history the table keeps.
func TestGrowingTablesUseIndexes(t *testing.T) {
	s := open(t, testenv.Postgres(t).CreateDatabase(t))
	ctx := t.Context()
	conn, err := s.DB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SET enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	for _, q := range sqlstore.GrowingTableQueries() {
		t.Run(q.Name, func(t *testing.T) {
			rows, err := conn.QueryContext(ctx, "EXPLAIN "+s.Dialect().Rebind(q.SQL), q.Args...)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var plan []string
			for rows.Next() {
				var line string
				if err := rows.Scan(&line); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, strings.TrimSpace(line))
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			for _, line := range plan {
				for _, table := range sqlstore.GrowingTables {
					if strings.Contains(line, "Seq Scan on "+table+" ") || strings.HasSuffix(line, "Seq Scan on "+table) {
						t.Errorf("%s scans %s:\n%s", q.SQL, table, strings.Join(plan, "\n"))
					}
				}
			}
		})
	}
}
