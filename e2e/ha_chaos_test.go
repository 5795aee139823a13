package e2e

import (
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/testing/testenv"
)

// TestHAChaos runs three daemons (the real binary) on one real PostgreSQL
// while rotations are triggered continuously through random daemons, kills
// a daemon with SIGKILL every few seconds — preferring one that holds a
// rotation lease at that moment — restarts it, and restarts the database
// once. Then, everything settled, the invariants: every rotation done and
// none overlapping another of its key; for each key one live credential at
// the issuer, equal to rekey's current one and to the sink's value; no
// generation name created twice at the issuer (mints carry idempotency
// keys: one whose answer a kill lost is replayed, not repeated); every
// notification delivered to each of the two notifiers, the same events to
// both; the audit chain intact. It reports the kills, the rotations, the
// mints the issuer replayed, and the takeover time of every rotation whose
// lease holder was killed (target: within lease_ttl + poll_interval).
//
// It runs ~30 s of chaos; REKEY_SOAK=10m runs longer. REKEY_CHAOS_SEED
// replays a run (the seed is printed).
func TestHAChaos(t *testing.T) {
	t.Parallel()
	chaosFor := 30 * time.Second
	if v := os.Getenv("REKEY_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("REKEY_SOAK: %v", err)
		}
		chaosFor = d
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("REKEY_CHAOS_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("REKEY_CHAOS_SEED: %v", err)
		}
		seed = s
	}
	t.Logf("chaos seed %d (replay with REKEY_CHAOS_SEED=%d)", seed, seed)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("FAILED with chaos seed %d (replay with REKEY_CHAOS_SEED=%d)", seed, seed)
		}
	})
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	pg := testenv.NewPostgres(t)
	dsn := pg.CreateDatabase(t)
	keys := []string{"k0", "k1", "k2", "k3", "k4", "k5"}
	const ttl, poll = 2 * time.Second, 200 * time.Millisecond
	c := newHACluster(t, dsn, 3, keys, ttl, poll, 150*time.Millisecond)
	for i := range 3 {
		c.start(i)
	}
	c.waitSettled(60 * time.Second) // bootstrap: every key minted once

	var (
		mu        sync.Mutex
		takeovers []time.Duration
		lost      []string // rotations not taken over in time
		started   atomic.Int64
		watchers  sync.WaitGroup
	)
	stop := make(chan struct{})
	var triggers sync.WaitGroup
	triggers.Add(1)
	go func() { // rotations triggered continuously, through random live daemons
		defer triggers.Done()
		trng := rand.New(rand.NewPCG(seed+1, seed))
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			live := slices.DeleteFunc(c.all(), func(d *haDaemon) bool { return !d.alive() })
			if len(live) == 0 {
				continue
			}
			if c.trigger(live[trng.IntN(len(live))], keys[trng.IntN(len(keys))]) {
				started.Add(1)
			}
		}
	}()

	kills, dbRestarted := 0, false
	begin := time.Now()
	for time.Since(begin) < chaosFor {
		pause := time.Duration(1500+rng.IntN(2000)) * time.Millisecond
		time.Sleep(pause) // the chaos schedule, not a wait for a condition
		if !dbRestarted && time.Since(begin) > chaosFor/2 {
			watchers.Wait() // takeovers are measured apart from the outage
			t.Logf("restarting PostgreSQL")
			if err := pg.Stop(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Duration(1000+rng.IntN(2000)) * time.Millisecond) // the outage
			if err := pg.Start(); err != nil {
				t.Fatal(err)
			}
			dbRestarted = true
			continue
		}
		all := c.all()
		live := slices.DeleteFunc(slices.Clone(all), func(d *haDaemon) bool { return !d.alive() })
		for _, d := range all { // bring back what an earlier kill left down
			if !d.alive() {
				c.start(d.slot)
			}
		}
		if len(live) < 2 {
			continue
		}
		held, pids := c.holders()
		victim := live[rng.IntN(len(live))]
		for _, d := range live { // prefer a daemon holding a lease now
			if id := pids[d.cmd.Process.Pid]; len(held[id]) > 0 && rng.IntN(4) > 0 {
				victim = d
				break
			}
		}
		owner := pids[victim.cmd.Process.Pid]
		killedAt := time.Now()
		c.kill(victim)
		kills++
		for id := range held[owner] {
			watchers.Add(1)
			go func() {
				defer watchers.Done()
				d, ok := c.takeover(id, owner, killedAt, patient(2*time.Minute).Sub(killedAt))
				mu.Lock()
				defer mu.Unlock()
				if ok {
					takeovers = append(takeovers, d)
				} else {
					lost = append(lost, id)
				}
			}()
		}
		if rng.IntN(3) > 0 { // mostly back at once; sometimes kept down until the next round
			c.start(victim.slot)
		}
	}
	close(stop)
	triggers.Wait()
	for _, d := range c.all() {
		if !d.alive() {
			c.start(d.slot)
		}
	}
	c.waitSettled(2 * time.Minute)
	watchers.Wait()
	rotations, replays := c.checkInvariants()
	// The cluster view: the three running daemons alive, every killed
	// process gone (it stopped heartbeating), through the CLI and /metrics.
	var states map[string]int
	c.waitFor("the cluster view to show 3 alive and every killed daemon gone", 30*time.Second, func() bool {
		states = c.clusterView()
		return states["alive"] == 3 && states["gone"] == kills
	})
	c.waitFor("rekey_cluster_members on /metrics", 30*time.Second, func() bool {
		d := c.all()[0]
		return c.metric(d, `rekey_cluster_members{state="alive"}`) == "3" && c.metric(d, `rekey_cluster_members{state="gone"}`) == strconv.Itoa(kills)
	})
	if len(lost) > 0 {
		t.Errorf("rotations whose lease holder was killed were never taken over: %v", lost)
	}
	if !dbRestarted {
		t.Error("the database was never restarted (chaos too short)")
	}
	slices.Sort(takeovers)
	t.Logf("chaos %s: %d kills, 1 database restart, %d rotations (%d triggered during chaos), %d takeovers: p50 %s p99 %s max %s (target lease_ttl %s + poll %s = %s); %d notifications redelivered after a kill (same webhook-id); %d mints replayed by idempotency key",
		chaosFor, kills, rotations, started.Load(), len(takeovers), percentile(takeovers, 0.5).Round(time.Millisecond), percentile(takeovers, 0.99).Round(time.Millisecond),
		percentile(takeovers, 1).Round(time.Millisecond), ttl, poll, ttl+poll, c.redelivered(), replays)
	if kills == 0 || started.Load() == 0 {
		t.Errorf("no chaos: %d kills, %d rotations triggered", kills, started.Load())
	}
}
