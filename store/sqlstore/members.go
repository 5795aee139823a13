package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// memberRetention is how long a member that stopped heartbeating stays in
// the cluster view.
const memberRetention = 24 * time.Hour

// Heartbeat registers m or renews it: alive until ttl from the database's
// now. It also prunes members gone for longer than memberRetention.
func (s *Store) Heartbeat(ctx context.Context, m rotator.Member, ttl time.Duration) error {
	now, until := s.d.NowPlus, s.d.NowPlus
	err := s.write(ctx, func(tx *sql.Tx) error {
		if _, err := s.txExec(ctx, tx, `INSERT INTO members (id, host, pid, version, started_at, heartbeat_at, expires_at, left_at)
			VALUES (?, ?, ?, ?, `+now+`, `+now+`, `+until+`, '')
			ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at,
				host = excluded.host, pid = excluded.pid, version = excluded.version, left_at = ''`,
			clean(m.ID), clean(m.Host), m.PID, clean(m.Version), 0, 0, ttl.Milliseconds()); err != nil {
			return err
		}
		_, err := s.txExec(ctx, tx, `DELETE FROM members WHERE expires_at < `+now, -memberRetention.Milliseconds())
		return err
	})
	if err != nil {
		return s.errorf("member heartbeat: %w", err)
	}
	return nil
}

// Leave marks member id stopped (a clean shutdown).
func (s *Store) Leave(ctx context.Context, id string) error {
	if _, err := s.exec(ctx, `UPDATE members SET left_at = `+s.d.NowPlus+`, expires_at = `+s.d.NowPlus+` WHERE id = ?`, 0, 0, id); err != nil {
		return s.errorf("member leave: %w", err)
	}
	return nil
}

// Members lists every member, alive ones first, then by start time, each
// with the active rotations whose unexpired lease it holds.
func (s *Store) Members(ctx context.Context) ([]rotator.Member, error) {
	rows, err := s.query(ctx, `SELECT id, host, pid, version, started_at, heartbeat_at, left_at,
			CASE WHEN expires_at > `+s.d.NowPlus+` THEN 1 ELSE 0 END
		FROM members ORDER BY 8 DESC, started_at, id`, 0)
	if err != nil {
		return nil, s.errorf("members: %w", err)
	}
	var out []rotator.Member
	at := map[string]int{}
	for rows.Next() {
		var (
			m     rotator.Member
			left  string
			alive int
		)
		if err := rows.Scan(&m.ID, &m.Host, &m.PID, &m.Version, timeCol{&m.StartedAt}, timeCol{&m.HeartbeatAt}, &left, &alive); err != nil {
			rows.Close()
			return nil, s.errorf("members: %w", err)
		}
		m.Alive, m.Left = alive == 1, left != "" && alive == 0
		at[m.ID] = len(out)
		out = append(out, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, s.errorf("members: %w", err)
	}
	held, err := s.query(ctx, `SELECT lease_owner, id, key, phase, lease_epoch FROM rotations
		WHERE finished = 0 AND lease_owner <> '' AND lease_until > `+s.d.NowPlus+` ORDER BY lease_owner, key`, 0)
	if err != nil {
		return nil, s.errorf("members: held rotations: %w", err)
	}
	defer held.Close()
	for held.Next() {
		var owner string
		var h rotator.HeldRotation
		if err := held.Scan(&owner, &h.ID, &h.Key, &h.Phase, &h.Epoch); err != nil {
			return nil, s.errorf("members: held rotations: %w", err)
		}
		if i, ok := at[owner]; ok {
			out[i].Holds = append(out[i].Holds, h)
		}
	}
	if err := held.Err(); err != nil {
		return nil, s.errorf("members: held rotations: %w", err)
	}
	return out, nil
}

var _ rotator.Membership = (*Store)(nil)
