package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/rekeyhq/rekey/rotator"
)

// auditHead is the single audit_head row: the last appended event.
type auditHead struct {
	seq  int64
	hash string
}

// SetAuditKeys makes the store seal new audit events with k's current key
// (an HMAC the database cannot recompute) and verify the trail with every
// key of k. Call it before the store is used; without it the chain is the
// unkeyed SHA-256 one.
func (s *Store) SetAuditKeys(k rotator.AuditKeys) { s.auditKeys = k }

// AuditHead returns the sequence number and hash of the last appended audit
// event (0 and "" for an empty trail), as recorded in the audit_head row:
// what a signed checkpoint attests.
func (s *Store) AuditHead(ctx context.Context) (seq int64, hash string, err error) {
	if err := s.db.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&seq, &hash); err != nil {
		return 0, "", s.errorf("read audit head: %w", err)
	}
	return seq, hash, nil
}

// lockHead reads the audit head inside a write transaction and, where the
// dialect needs it, locks it until commit: every append in every process
// queues here, so sequence numbers and hashes never fork.
func (s *Store) lockHead(ctx context.Context, tx *sql.Tx) (auditHead, error) {
	var h auditHead
	err := s.txQueryRow(ctx, tx, `SELECT seq, hash FROM audit_head WHERE id = 1`+s.d.LockRow).Scan(&h.seq, &h.hash)
	if err != nil {
		return h, fmt.Errorf("read audit head: %w", err)
	}
	return h, nil
}

// appendAudit chains evs after head, inserts them and moves the head. It
// returns the events as stored, with Seq, PrevHash and Hash set. The events
// go in multi-row INSERTs (a commit carries one to a few): one statement,
// prepared once per arity, instead of one per event.
func (s *Store) appendAudit(ctx context.Context, tx *sql.Tx, head auditHead, evs []rotator.AuditEvent) ([]rotator.AuditEvent, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	out := make([]rotator.AuditEvent, len(evs))
	for i, ev := range evs {
		if err := checkTime("audit event time", ev.At); err != nil {
			return nil, fmt.Errorf("append audit: %w", err)
		}
		ev = cleanEvent(ev)
		ev.Seq, ev.PrevHash = head.seq+1, head.hash
		ev.Hash = s.auditKeys.Seal(ev.PrevHash, ev)
		head = auditHead{seq: ev.Seq, hash: ev.Hash}
		out[i] = ev
	}
	for from := 0; from < len(out); from += maxRowsPerInsert {
		chunk := out[from:min(from+maxRowsPerInsert, len(out))]
		args := make([]any, 0, 10*len(chunk))
		for _, ev := range chunk {
			args = append(args, ev.Seq, TimeText(ev.At), ev.RotationID, ev.Key, ev.Actor, ev.Action,
				string(ev.Phase), rotator.MarshalDetail(ev.Detail), ev.PrevHash, ev.Hash)
		}
		if _, err := s.txExec(ctx, tx, insertAudit[len(chunk)], args...); err != nil {
			return nil, fmt.Errorf("append audit events %d-%d: %w", chunk[0].Seq, chunk[len(chunk)-1].Seq, err)
		}
	}
	if _, err := s.txExec(ctx, tx, (`UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1`), head.seq, head.hash); err != nil {
		return nil, fmt.Errorf("move audit head: %w", err)
	}
	return out, nil
}

var insertAudit = multiRowInsert(`INSERT INTO audit_events (`+auditColumns+`) VALUES `, 10, "")

// cleanEvent makes every string of ev storable byte for byte, so that the
// hash computed now is the one recomputed from the stored row.
func cleanEvent(ev rotator.AuditEvent) rotator.AuditEvent {
	ev.At = ev.At.UTC()
	ev.RotationID, ev.Key, ev.Actor, ev.Action = clean(ev.RotationID), clean(ev.Key), clean(ev.Actor), clean(ev.Action)
	ev.Phase = rotator.Phase(clean(string(ev.Phase)))
	for k, v := range ev.Detail {
		if clean(k) != k || clean(v) != v {
			d := make(map[string]string, len(ev.Detail))
			for k, v := range ev.Detail {
				d[clean(k)] = clean(v)
			}
			ev.Detail = d
			break
		}
	}
	return ev
}

const auditColumns = `seq, at, rotation_id, key, actor, action, phase, detail, prev_hash, hash`

func scanAudit(sc scanner) (rotator.AuditEvent, error) {
	var (
		ev     rotator.AuditEvent
		detail string
	)
	if err := sc.Scan(&ev.Seq, timeCol{&ev.At}, &ev.RotationID, &ev.Key, &ev.Actor, &ev.Action, &ev.Phase, &detail, &ev.PrevHash, &ev.Hash); err != nil {
		return ev, err
	}
	if err := json.Unmarshal([]byte(detail), &ev.Detail); err != nil {
		return ev, fmt.Errorf("audit event %d: decode detail: %w", ev.Seq, err)
	}
	if len(ev.Detail) == 0 {
		ev.Detail = nil
	}
	return ev, nil
}

// Audit returns the events matching f in sequence order.
func (s *Store) Audit(ctx context.Context, f rotator.AuditFilter) ([]rotator.AuditEvent, error) {
	query := `SELECT ` + auditColumns + ` FROM audit_events WHERE seq > ?`
	args := []any{f.AfterSeq}
	if f.Key != "" {
		query += ` AND key = ?`
		args = append(args, f.Key)
	}
	if f.RotationID != "" {
		query += ` AND rotation_id = ?`
		args = append(args, f.RotationID)
	}
	query += ` ORDER BY seq` + limit(f.Limit)
	evs, err := queryAudit(ctx, s.db, s.q(query), args...)
	if err != nil {
		return nil, s.errorf("audit: %w", err)
	}
	return evs, nil
}

// querier is a transaction or the pool.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// rowQuerier is a transaction or the pool, for single-row reads too.
type rowQuerier interface {
	querier
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func queryAudit(ctx context.Context, db querier, query string, args ...any) ([]rotator.AuditEvent, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []rotator.AuditEvent
	for rows.Next() {
		ev, err := scanAudit(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, rows.Err()
}

// VerifyAudit walks the whole trail in sequence order with
// the store's audit keys (rotator.AuditKeys.Verify) — which finds edited events and deleted or
// inserted ones before the last — then checks that the audit head names the
// last event, which finds deleted (or added) events at the end. It reads one
// consistent snapshot, so it can run beside appending daemons. No problems
// means an intact chain.
func (s *Store) VerifyAudit(ctx context.Context) ([]rotator.AuditProblem, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return nil, s.errorf("verify audit: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	var head auditHead
	if err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&head.seq, &head.hash); err != nil {
		return nil, s.errorf("verify audit: read head: %w", err)
	}
	evs, err := queryAudit(ctx, tx, `SELECT `+auditColumns+` FROM audit_events ORDER BY seq`)
	if err != nil {
		return nil, s.errorf("verify audit: %w", err)
	}
	problems := s.auditKeys.Verify(evs)
	var last auditHead
	if n := len(evs); n > 0 {
		last = auditHead{seq: evs[n-1].Seq, hash: evs[n-1].Hash}
	}
	switch {
	case last.seq < head.seq:
		problems = append(problems, rotator.AuditProblem{Seq: head.seq,
			Problem: "audit head records event " + strconv.FormatInt(head.seq, 10) + " but the trail ends at " +
				strconv.FormatInt(last.seq, 10) + " (events at the end deleted?)"})
	case last.seq > head.seq:
		problems = append(problems, rotator.AuditProblem{Seq: last.seq,
			Problem: "trail continues past the audit head at " + strconv.FormatInt(head.seq, 10) + " (events added outside rekey?)"})
	case last.hash != head.hash:
		problems = append(problems, rotator.AuditProblem{Seq: head.seq,
			Problem: "audit head hash differs from the last event's (last event replaced?)"})
	}
	return problems, nil
}
