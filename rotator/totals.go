package rotator

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Totals count what happened to keys, read from the store. They are derived
// from rows no retention deletes (credentials, finished rotations, the audit
// trail), so they only grow, and every process reading one store — each
// daemon sharing a PostgreSQL, the break-glass CLI — agrees on them, whoever
// drove the work.
type Totals struct {
	Keys      map[string]KeyTotals
	Rotations []RotationTotal
}

// KeyTotals are one key's counts.
type KeyTotals struct {
	Minted  int64 // credentials with an issuer id
	Revoked int64 // of those, revoked; plus orphans of interrupted mints revoked
	// WatchAlerts are post-revoke watch alerts (audit action watch.alert).
	WatchAlerts int64
}

// RotationTotal counts finished rotations by outcome (the terminal phase),
// trigger and mode.
type RotationTotal struct {
	Outcome Phase
	Trigger Trigger
	Mode    Mode
	Count   int64
}

// TotalsStore is the store capability the counters are read from. Without
// it the engine warns at start and the counters are not exported.
type TotalsStore interface {
	Totals(ctx context.Context) (Totals, error)
}

// totalsMaxAge bounds how often a scrape queries the store: scrapes within
// it (several Prometheus servers, a dashboard) share one read.
const totalsMaxAge = 2 * time.Second

// storeCounters is a prometheus.Collector exporting the counters that
// describe what happened to keys, read from the store at scrape time
// (cached for totalsMaxAge). Until a store is attached it exports nothing.
type storeCounters struct {
	noKey                             bool
	minted, revoked, watch, rotations *prometheus.Desc

	mu     sync.Mutex
	store  TotalsStore
	clock  Clock
	log    *slog.Logger
	read   time.Time // when cached was read; zero: never
	cached Totals
}

func newStoreCounters(noKey bool) *storeCounters {
	return &storeCounters{noKey: noKey,
		minted: prometheus.NewDesc("rekey_credentials_minted_total",
			"Credentials minted, read from the store (whoever drove the rotation).", []string{"key"}, nil),
		revoked: prometheus.NewDesc("rekey_credentials_revoked_total",
			"Credentials revoked, orphans of interrupted mints included, read from the store.", []string{"key"}, nil),
		watch: prometheus.NewDesc("rekey_watch_alerts_total",
			"Watch alerts: traffic on a credential after its revoke, read from the store.", []string{"key"}, nil),
		rotations: prometheus.NewDesc("rekey_rotations_total",
			"Rotations that ended, by outcome phase, trigger and mode, read from the store.", []string{"outcome", "trigger", "mode"}, nil),
	}
}

// attach sets the store the counters are read from.
func (c *storeCounters) attach(s TotalsStore, clock Clock, log *slog.Logger) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.store, c.clock, c.log, c.read = s, clock, log, time.Time{}
}

// Describe implements prometheus.Collector.
func (c *storeCounters) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.minted
	ch <- c.revoked
	ch <- c.watch
	ch <- c.rotations
}

// Collect implements prometheus.Collector. A failed read keeps the last
// totals (a counter never goes down) and is logged.
func (c *storeCounters) Collect(ch chan<- prometheus.Metric) {
	t, ok := c.totals()
	if !ok {
		return
	}
	keys := t.Keys
	if c.noKey {
		var all KeyTotals
		for _, k := range t.Keys {
			all.Minted += k.Minted
			all.Revoked += k.Revoked
			all.WatchAlerts += k.WatchAlerts
		}
		keys = map[string]KeyTotals{"": all}
	}
	for name, k := range keys {
		ch <- prometheus.MustNewConstMetric(c.minted, prometheus.CounterValue, float64(k.Minted), name)
		ch <- prometheus.MustNewConstMetric(c.revoked, prometheus.CounterValue, float64(k.Revoked), name)
		ch <- prometheus.MustNewConstMetric(c.watch, prometheus.CounterValue, float64(k.WatchAlerts), name)
	}
	for _, r := range t.Rotations {
		ch <- prometheus.MustNewConstMetric(c.rotations, prometheus.CounterValue, float64(r.Count), string(r.Outcome), string(r.Trigger), string(r.Mode))
	}
}

// totals returns the cached totals, read again once totalsMaxAge passed.
func (c *storeCounters) totals() (Totals, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.store == nil {
		return Totals{}, false
	}
	now := c.clock.Now()
	if c.read.IsZero() || now.Sub(c.read) >= totalsMaxAge || now.Before(c.read) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		t, err := c.store.Totals(ctx)
		cancel()
		if err != nil {
			c.log.Warn("read the counters from the store", "err", err)
		} else {
			c.cached, c.read = t, now
		}
	}
	return c.cached, !c.read.IsZero()
}
