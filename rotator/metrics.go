package rotator

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Metrics are the engine's Prometheus metrics. Labels never carry secret
// material: key names, phases, outcomes and reasons only.
type Metrics struct {
	phaseTransitions *prometheus.CounterVec
	phaseDuration    *prometheus.HistogramVec
	errors           *prometheus.CounterVec
	keyAge           *prometheus.GaugeVec
	drain            *prometheus.GaugeVec
	notifications    *prometheus.CounterVec
	inboundEvents    *prometheus.CounterVec
	breakerOpen      prometheus.Gauge
	held             *prometheus.GaugeVec
	outboxPending    prometheus.Gauge
	outboxOldest     prometheus.Gauge
	keyMaxAge        *prometheus.GaugeVec
	active           *prometheus.GaugeVec
	approvals        *prometheus.GaugeVec
	issuerCalls      *prometheus.HistogramVec
	sinkCalls        *prometheus.HistogramVec
	lastEvaluation   prometheus.Gauge
	// counts are the counters of what happened to keys (minted, revoked,
	// watch alerts, finished rotations), read from the store.
	counts *storeCounters
	// noKey drops the per-key label (MetricsOptions.PerKey false).
	noKey   bool
	cluster *clusterMetrics
}

// MetricsOptions tune NewMetricsWith.
type MetricsOptions struct {
	// PerKey keeps the key label. Off, for fleets too large for one series
	// per key: counters lose the label (one series for all keys) and the
	// per-key gauges (age, max age, drain rate) are not exported; held
	// rotations keep the longest wait per hold.
	PerKey bool
}

// callBuckets fit adapter calls: a few milliseconds to five minutes.
var callBuckets = prometheus.ExponentialBucketsRange(0.005, 300, 14)

// phaseBuckets fit phases from a millisecond to a day (a drain of minutes
// to hours, an approval that waits overnight).
var phaseBuckets = prometheus.ExponentialBuckets(0.001, 4, 15)

// NewMetrics creates the metrics, with the key label, and registers them
// with reg (nil: not registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return NewMetricsWith(reg, MetricsOptions{PerKey: true})
}

// NewMetricsWith is NewMetrics with options.
func NewMetricsWith(reg prometheus.Registerer, o MetricsOptions) *Metrics {
	m := &Metrics{noKey: !o.PerKey,
		phaseTransitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rekey_rotation_phase_transitions_total", Help: "Rotations entering a phase.",
		}, []string{"phase", "mode"}),
		phaseDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "rekey_rotation_phase_duration_seconds", Help: "Time spent in each phase.",
			Buckets: phaseBuckets,
		}, []string{"phase"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rekey_rotation_errors_total", Help: "Failed rotation steps by phase and reason.",
		}, []string{"phase", "reason"}),
		keyAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rekey_key_age_seconds", Help: "Age of each key's current credential.",
		}, []string{"key"}),
		drain: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rekey_drain_unauthorized_rate", Help: "Last 401 rate the drain gate saw per key.",
		}, []string{"key"}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rekey_notifications_total", Help: "Notification deliveries by notifier and result.",
		}, []string{"notifier", "result"}),
		inboundEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rekey_inbound_events_total", Help: "Inbound reports accepted (exposure, departure).",
		}, []string{"kind"}),
		breakerOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rekey_emergency_breaker_open", Help: "1 while the emergency breaker contains automatic revocations.",
		}),
		held: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rekey_rotations_held", Help: "Seconds each active rotation has waited for a person (at least 1), by key and hold.",
		}, []string{"key", "hold"}),
		outboxPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rekey_outbox_pending", Help: "Notifications in the outbox not yet delivered.",
		}),
		outboxOldest: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rekey_outbox_oldest_pending_seconds", Help: "Age of the oldest undelivered notification (0 when none).",
		}),
		keyMaxAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rekey_key_max_age_seconds", Help: "Each key's effective max_age.",
		}, []string{"key"}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rekey_rotations_active", Help: "Active rotations by phase and waiting reason (\"\" while running), read from the store.",
		}, []string{"phase", "waiting"}),
		approvals: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rekey_approvals_pending", Help: "Rotations waiting for an approval (or a drain decision), by gate, read from the store.",
		}, []string{"gate"}),
		issuerCalls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "rekey_issuer_call_duration_seconds", Help: "Issuer calls by issuer, operation and result (ok or the error's reason).",
			Buckets: callBuckets,
		}, []string{"issuer", "op", "result"}),
		sinkCalls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "rekey_sink_call_duration_seconds", Help: "Sink calls by sink, phase and result (ok or the error's reason).",
			Buckets: callBuckets,
		}, []string{"sink", "phase", "result"}),
		lastEvaluation: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rekey_policy_last_evaluation_timestamp_seconds", Help: "When the policies were last evaluated (Unix seconds).",
		}),
		counts:  newStoreCounters(!o.PerKey),
		cluster: newClusterMetrics(),
	}
	if reg != nil {
		reg.MustRegister(m.cluster.collectors()...)
		reg.MustRegister(m.phaseTransitions, m.counts, m.phaseDuration, m.errors, m.keyAge, m.drain, m.notifications, m.inboundEvents, m.breakerOpen,
			m.held, m.outboxPending, m.outboxOldest, m.keyMaxAge, m.active, m.approvals, m.issuerCalls, m.sinkCalls, m.lastEvaluation)
	}
	return m
}

// key is the key label's value: the key, or "" without per-key labels.
func (m *Metrics) key(k string) string {
	if m.noKey {
		return ""
	}
	return k
}

func (m *Metrics) phaseEntered(r *Rotation, p Phase) {
	m.phaseTransitions.WithLabelValues(string(p), string(r.Mode)).Inc()
}

func (m *Metrics) phaseDone(p Phase, d time.Duration) {
	m.phaseDuration.WithLabelValues(string(p)).Observe(d.Seconds())
}

func (m *Metrics) stepError(p Phase, r Reason) { m.errors.WithLabelValues(string(p), string(r)).Inc() }

// KeyAge records the age of a key's current credential.
func (m *Metrics) KeyAge(key string, age time.Duration) {
	if !m.noKey {
		m.keyAge.WithLabelValues(key).Set(age.Seconds())
	}
}

func (m *Metrics) drainReading(key string, v float64) {
	if !m.noKey {
		m.drain.WithLabelValues(key).Set(v)
	}
}
func (m *Metrics) notified(notifier, result string) {
	m.notifications.WithLabelValues(notifier, result).Inc()
}

func (m *Metrics) inbound(kind string) { m.inboundEvents.WithLabelValues(kind).Inc() }

func (m *Metrics) breaker(open bool) {
	v := 0.0
	if open {
		v = 1
	}
	m.breakerOpen.Set(v)
}

// KeyMaxAge records a key's effective max_age.
func (m *Metrics) KeyMaxAge(key string, d time.Duration) {
	if !m.noKey {
		m.keyMaxAge.WithLabelValues(key).Set(d.Seconds())
	}
}

// heldRotations replaces the held-rotations gauge with the rotations given:
// for each one waiting on a person, how long it has waited, in seconds.
func (m *Metrics) heldRotations(rs []*Rotation, now time.Time) {
	m.held.Reset()
	for _, r := range rs {
		if r.Hold != HoldNone {
			since := r.HeldSince
			if since.IsZero() {
				since = r.PhaseStartedAt
			}
			g := m.held.WithLabelValues(m.key(r.Key), string(r.Hold))
			v := max(now.Sub(since).Seconds(), 1)
			if m.noKey {
				v = max(v, gaugeValue(g))
			}
			g.Set(v)
		}
	}
}

func (m *Metrics) outbox(pending int, oldest time.Duration) {
	m.outboxPending.Set(float64(pending))
	m.outboxOldest.Set(oldest.Seconds())
}

// activeRotations replaces the active-rotation and pending-approval gauges
// with the rotations given (every active rotation, from the store).
func (m *Metrics) activeRotations(rs []*Rotation) {
	m.active.Reset()
	m.approvals.Reset()
	for _, g := range []Gate{GateStart, GateRevoke, GateDrain} {
		m.approvals.WithLabelValues(string(g)).Set(0)
	}
	for _, r := range rs {
		reason := ""
		if r.Waiting != nil {
			reason = string(r.Waiting.Reason)
		}
		m.active.WithLabelValues(string(r.Phase), reason).Inc()
		if g, ok := pendingGate(r); ok {
			m.approvals.WithLabelValues(string(g)).Inc()
		}
	}
}

// pendingGate is the gate a rotation waits on a decision for.
func pendingGate(r *Rotation) (Gate, bool) {
	switch {
	case r.Hold == HoldApproval && r.Phase == PhaseAwaitingApproval:
		return GateStart, true
	case r.Hold == HoldApproval:
		return GateRevoke, true
	case r.Hold == HoldDrainTimeout:
		return GateDrain, true
	}
	return "", false
}

// call records one adapter call of family ("issuer", "sink").
func (m *Metrics) call(family, name, op string, start time.Time, err error) {
	result := "ok"
	if err != nil {
		result = string(ReasonOf(err))
	}
	h := m.issuerCalls
	if family == "sink" {
		h = m.sinkCalls
	}
	h.WithLabelValues(name, op, result).Observe(time.Since(start).Seconds())
}

func (m *Metrics) evaluated(at time.Time) { m.lastEvaluation.Set(float64(at.UnixNano()) / 1e9) }

// gaugeValue reads a gauge's current value.
func gaugeValue(g prometheus.Gauge) float64 {
	var pb dto.Metric
	if err := g.Write(&pb); err != nil {
		return 0
	}
	return pb.GetGauge().GetValue()
}
