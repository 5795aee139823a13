package sqlstore

import (
	"context"

	"github.com/rekeyhq/rekey/rotator"
)

// qTotals reads every counter of what happened to keys in one statement,
// each branch an index-only scan of a partial index holding just the rows
// it counts (migration 13): minted credentials by key and state, finished
// rotations by outcome, trigger and mode, and the audit events counted
// (orphans revoked, watch alerts) by action and key. None of these rows is
// ever deleted (retention prunes only the outbox, processed inbound events
// and expired replay ids), so every count only grows.
const qTotals = `SELECT 'credentials', key, '', '', '', COUNT(*), SUM(CASE WHEN state = 'revoked' THEN 1 ELSE 0 END)
		FROM credentials WHERE issuer_id <> '' GROUP BY key
	UNION ALL
	SELECT 'rotations', '', phase, trigger_kind, mode, COUNT(*), 0
		FROM rotations WHERE finished = 1 GROUP BY phase, trigger_kind, mode
	UNION ALL
	SELECT action, key, '', '', '', COUNT(*), 0
		FROM audit_events WHERE action IN ('orphan.revoked', 'watch.alert') GROUP BY action, key`

// Totals counts what happened to keys. Implements rotator.TotalsStore.
func (s *Store) Totals(ctx context.Context) (rotator.Totals, error) {
	t := rotator.Totals{Keys: map[string]rotator.KeyTotals{}}
	rows, err := s.query(ctx, qTotals)
	if err != nil {
		return rotator.Totals{}, s.errorf("totals: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var what, key, phase, trigger, mode string
		var n, revoked int64
		if err := rows.Scan(&what, &key, &phase, &trigger, &mode, &n, &revoked); err != nil {
			return rotator.Totals{}, s.errorf("totals: %w", err)
		}
		k := t.Keys[key]
		switch what {
		case "credentials":
			k.Minted += n
			k.Revoked += revoked
		case "orphan.revoked":
			k.Revoked += n
		case "watch.alert":
			k.WatchAlerts += n
		case "rotations":
			t.Rotations = append(t.Rotations, rotator.RotationTotal{Outcome: rotator.Phase(phase), Trigger: rotator.Trigger(trigger), Mode: rotator.Mode(mode), Count: n})
			continue
		}
		t.Keys[key] = k
	}
	if err := rows.Err(); err != nil {
		return rotator.Totals{}, s.errorf("totals: %w", err)
	}
	return t, nil
}

var _ rotator.TotalsStore = (*Store)(nil)
