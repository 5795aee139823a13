package rotator

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Member is one daemon process sharing the store, as the cluster view shows
// it. The store sets the times from the database's clock.
type Member struct {
	ID      string // the lease owner: unique per process
	Host    string // for people to read
	PID     int
	Version string
	// StartedAt and HeartbeatAt are the database's times of the first and
	// last heartbeat.
	StartedAt   time.Time
	HeartbeatAt time.Time
	// Alive: its last heartbeat is within its TTL (by the database's
	// clock); Left: it stopped cleanly. Neither: gone (stopped heartbeating).
	Alive bool
	Left  bool
	// Holds lists the rotations whose unexpired lease it holds.
	Holds []HeldRotation
}

// HeldRotation is a rotation a member holds the lease of.
type HeldRotation struct {
	ID    string
	Key   string
	Phase Phase
	Epoch int64
}

// Membership is the store capability behind the cluster view.
type Membership interface {
	// Heartbeat registers m (ID, Host, PID, Version) or renews it, alive
	// for ttl from the database's now; members gone for a day are pruned.
	Heartbeat(ctx context.Context, m Member, ttl time.Duration) error
	// Leave marks the member stopped.
	Leave(ctx context.Context, id string) error
	// Members lists every member, alive first, with the rotations each holds.
	Members(ctx context.Context) ([]Member, error)
}

// heartbeatMember registers e.member and renews it every TTL/3 until ctx
// ends; the returned func marks it left. nil when there is no membership.
func (e *Engine) heartbeatMember(ctx context.Context) (stop func()) {
	ms, ok := e.store.(Membership)
	if e.member == nil || !ok {
		return nil
	}
	m := *e.member
	m.ID = e.owner
	hctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	beat := func() {
		if err := ms.Heartbeat(hctx, m, e.ttl); err != nil {
			if hctx.Err() == nil {
				e.logs.warn("member heartbeat", "cluster heartbeat", "err", err)
			}
			return
		}
		e.logs.ok("member heartbeat", "cluster heartbeat recorded again")
		if list, err := ms.Members(hctx); err == nil {
			e.metrics.members(list)
		}
	}
	go func() {
		defer close(done)
		t := time.NewTicker(e.ttl / 3)
		defer t.Stop()
		for {
			beat()
			select {
			case <-hctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		cancel()
		<-done
		lctx, lcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer lcancel()
		if err := ms.Leave(lctx, m.ID); err != nil {
			e.log.Warn("leave the cluster view", "err", err)
		}
	}
}

// Owner is this process's identity in leases and the cluster view.
func (e *Engine) Owner() string { return e.owner }

// LeaseTTL is the engine's lease TTL.
func (e *Engine) LeaseTTL() time.Duration { return e.ttl }

// clusterMetrics are the gauges of the cluster view and of this process's
// leases.
type clusterMetrics struct {
	members   *prometheus.GaugeVec
	heldNow   prometheus.Gauge
	leaseLoss prometheus.Counter
}

func newClusterMetrics() *clusterMetrics {
	return &clusterMetrics{
		members: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rekey_cluster_members", Help: "Daemons sharing the store, by state (alive, gone, left), as this daemon last read them.",
		}, []string{"state"}),
		heldNow: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rekey_leases_held", Help: "Rotation leases this daemon holds now.",
		}),
		leaseLoss: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rekey_lease_lost_total", Help: "Rotation leases this daemon lost while working (taken over, or not renewed within the TTL).",
		}),
	}
}

func (c *clusterMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{c.members, c.heldNow, c.leaseLoss}
}

func (m *Metrics) leaseHeld(delta float64) { m.cluster.heldNow.Add(delta) }
func (m *Metrics) leaseLost()              { m.cluster.leaseLoss.Inc() }

func (m *Metrics) members(list []Member) {
	n := map[string]float64{"alive": 0, "gone": 0, "left": 0}
	for _, mb := range list {
		n[MemberState(mb)]++
	}
	for s, v := range n {
		m.cluster.members.WithLabelValues(s).Set(v)
	}
}

// MemberState names a member's state: alive, left or gone.
func MemberState(m Member) string {
	switch {
	case m.Alive:
		return "alive"
	case m.Left:
		return "left"
	}
	return "gone"
}
