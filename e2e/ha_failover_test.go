package e2e

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/store/sqlstore"
	"github.com/rekeyhq/rekey/testing/testenv"
)

// TestHAPrimaryFailover runs two daemons on a PostgreSQL primary with a
// synchronous streaming-replication standby, connected with a multi-host
// DSN (target_session_attrs=read-write). Mid-rotation the primary is
// stopped and the standby promoted: the daemons reconnect to the new
// primary by themselves and every rotation completes, nothing lost or
// duplicated (the HA invariants). It reports the time from the primary's
// loss to the next committed step.
func TestHAPrimaryFailover(t *testing.T) {
	t.Parallel()
	primary := testenv.NewPostgres(t)
	u, err := url.Parse(primary.CreateDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	db := strings.TrimPrefix(u.Path, "/")
	standby := primary.NewStandby(t)
	// Synchronous replication: a commit the daemons saw is on the standby
	// (with asynchronous replication a failover may lose the last ones).
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, q := range []string{`ALTER SYSTEM SET synchronous_standby_names = '*'`, `SELECT pg_reload_conf()`,
		fmt.Sprintf(`ALTER DATABASE "%s" SET synchronous_commit = on`, db)} {
		if _, err := primary.Exec(ctx, "postgres", q); err != nil {
			t.Fatal(err)
		}
	}
	deadline := patient(30 * time.Second)
	for {
		out, err := primary.Exec(ctx, "postgres", `SELECT sync_state FROM pg_stat_replication`)
		if err == nil && strings.TrimSpace(out) == "sync" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the standby never became a synchronous replica: %q %v", out, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	dsn := fmt.Sprintf("host=127.0.0.1,127.0.0.1 port=%d,%d user=postgres dbname=%s sslmode=disable target_session_attrs=read-write connect_timeout=2",
		primary.Port, standby.Port, db)
	keys := []string{"f0", "f1", "f2", "f3"}
	const ttl, poll = 2 * time.Second, 200 * time.Millisecond
	c := newHACluster(t, dsn, 2, keys, ttl, poll, 300*time.Millisecond)
	c.start(0)
	c.start(1)
	c.waitSettled(60 * time.Second)

	for i, k := range keys {
		if !c.trigger(c.all()[i%2], k) {
			t.Fatalf("rotation of %s not started", k)
		}
	}
	c.waitFor("a rotation step in progress (a lease held)", 30*time.Second, func() bool {
		held, _ := c.holders()
		return len(held) > 0
	})
	lostAt := time.Now()
	if err := primary.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Since(lostAt)
	if err := standby.Promote(); err != nil {
		t.Fatal(err)
	}
	promoted := time.Since(lostAt)
	var firstCommit time.Duration
	c.waitFor("a step committed on the new primary", 60*time.Second, func() bool {
		var at string
		err := c.db.QueryRow(`SELECT COALESCE(MIN(at), '') FROM audit_events WHERE at > $1`, sqlstore.TimeText(lostAt)).Scan(&at)
		if err != nil || at == "" {
			return false
		}
		when, err := time.Parse("2006-01-02T15:04:05.000000000Z", at)
		if err != nil {
			t.Fatal(err)
		}
		firstCommit = when.Sub(lostAt)
		return true
	})
	c.waitSettled(2 * time.Minute)
	rotations, _ := c.checkInvariants()
	if rotations != 2*len(keys) {
		t.Errorf("%d rotations, want %d (one bootstrap and one rotation per key)", rotations, 2*len(keys))
	}
	t.Logf("primary failover: primary stopped in %s, standby promoted %s after the loss; first step committed on the new primary %s after the primary's loss (lease_ttl %s, poll %s); %d rotations done",
		stopped.Round(time.Millisecond), promoted.Round(time.Millisecond), firstCommit.Round(time.Millisecond), ttl, poll, rotations)
}
