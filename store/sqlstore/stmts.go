package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"sync"
)

// stmtCache keeps one prepared statement per query text: the pure-Go
// SQLite driver prepares a statement on every call otherwise, a third of
// the store's CPU time per rotation step. database/sql prepares a cached
// statement once per pooled connection and re-uses it inside transactions.
type stmtCache struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// prepared returns the cached statement for query (already rebound), or
// nil when caching is off (see Store.cache).
func (s *Store) prepared(ctx context.Context, query string) *sql.Stmt {
	if !s.cache {
		return nil
	}
	s.stmts.mu.Lock()
	st, ok := s.stmts.m[query]
	s.stmts.mu.Unlock()
	if ok {
		return st
	}
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil // the caller runs the query unprepared and reports its error
	}
	s.stmts.mu.Lock()
	defer s.stmts.mu.Unlock()
	if old, ok := s.stmts.m[query]; ok {
		_ = st.Close()
		return old
	}
	if s.stmts.m == nil {
		s.stmts.m = map[string]*sql.Stmt{}
	}
	s.stmts.m[query] = st
	return st
}

func (s *Store) closeStmts() {
	s.stmts.mu.Lock()
	defer s.stmts.mu.Unlock()
	for _, st := range s.stmts.m {
		_ = st.Close()
	}
	s.stmts.m = nil
}

func (s *Store) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	q := s.q(query)
	if st := s.prepared(ctx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return s.db.QueryContext(ctx, q, args...)
}

func (s *Store) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	q := s.q(query)
	if st := s.prepared(ctx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return s.db.QueryRowContext(ctx, q, args...)
}

// exec runs a write outside a transaction. It queues on the in-process
// write lock like every transaction (s.write): a write that skipped it met
// a transaction's SQLite lock and waited in SQLite's busy handler, which
// sleeps 1, 2, 5… ms between tries.
func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s.wlock != nil {
		select {
		case s.wlock <- struct{}{}:
			defer func() { <-s.wlock }()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	q := s.q(query)
	if st := s.prepared(ctx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return s.db.ExecContext(ctx, q, args...)
}

func (s *Store) txExec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	q := s.q(query)
	if st := s.prepared(ctx, q); st != nil {
		return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, q, args...)
}

func (s *Store) txQueryRow(ctx context.Context, tx *sql.Tx, query string, args ...any) *sql.Row {
	q := s.q(query)
	if st := s.prepared(ctx, q); st != nil {
		return tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, q, args...)
}

// maxRowsPerInsert bounds the rows of one multi-row INSERT (SQLite allows
// 32766 parameters; a commit rarely carries more than a few rows).
const maxRowsPerInsert = 32

// multiRowInsert returns, for every n in 1..maxRowsPerInsert, the statement
// head + n tuples of cols placeholders + tail: a fixed set of query texts,
// so that each arity is prepared once.
func multiRowInsert(head string, cols int, tail string) []string {
	tuple := "(?" + strings.Repeat(", ?", cols-1) + ")"
	out := make([]string, maxRowsPerInsert+1)
	for n := 1; n <= maxRowsPerInsert; n++ {
		out[n] = head + tuple + strings.Repeat(", "+tuple, n-1) + tail
	}
	return out
}
