package rotator

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the engine's Prometheus metrics. Labels never carry secret
// material: key names, phases, outcomes and reasons only.
type Metrics struct {
	phaseTransitions *prometheus.CounterVec
	rotations        *prometheus.CounterVec
	phaseDuration    *prometheus.HistogramVec
	errors           *prometheus.CounterVec
	keyAge           *prometheus.GaugeVec
	drain            *prometheus.GaugeVec
	mints            *prometheus.CounterVec
	revokes          *prometheus.CounterVec
	notifications    *prometheus.CounterVec
	inboundEvents    *prometheus.CounterVec
	breakerOpen      prometheus.Gauge
	held             *prometheus.GaugeVec
	watchAlerts      *prometheus.CounterVec
	outboxPending    prometheus.Gauge
	outboxOldest     prometheus.Gauge
	keyMaxAge        *prometheus.GaugeVec
	cluster          *clusterMetrics
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		phaseTransitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rekey_rotation_phase_transitions_total", Help: "Rotations entering a phase.",
		}, []string{"phase", "mode"}),
		rotations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rekey_rotations_total", Help: "Rotations that ended, by outcome phase and trigger.",
		}, []string{"outcome", "trigger", "mode"}),
		phaseDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "rekey_rotation_phase_duration_seconds", Help: "Time spent in each phase.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 12),
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
		mints: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rekey_credentials_minted_total", Help: "Credentials minted.",
		}, []string{"key"}),
		revokes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rekey_credentials_revoked_total", Help: "Credentials revoked.",
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
		watchAlerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rekey_watch_alerts_total", Help: "Watch alerts: traffic on a credential after its revoke.",
		}, []string{"key"}),
		outboxPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rekey_outbox_pending", Help: "Notifications in the outbox not yet delivered.",
		}),
		outboxOldest: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rekey_outbox_oldest_pending_seconds", Help: "Age of the oldest undelivered notification (0 when none).",
		}),
		keyMaxAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rekey_key_max_age_seconds", Help: "Each key's effective max_age.",
		}, []string{"key"}),
		cluster: newClusterMetrics(),
	}
	if reg != nil {
		reg.MustRegister(m.cluster.collectors()...)
		reg.MustRegister(m.phaseTransitions, m.rotations, m.phaseDuration, m.errors, m.keyAge, m.drain, m.mints, m.revokes, m.notifications, m.inboundEvents, m.breakerOpen,
			m.held, m.watchAlerts, m.outboxPending, m.outboxOldest, m.keyMaxAge)
	}
	return m
}

func (m *Metrics) phaseEntered(r *Rotation, p Phase) {
	m.phaseTransitions.WithLabelValues(string(p), string(r.Mode)).Inc()
	if p.Terminal() {
		m.rotations.WithLabelValues(string(p), string(r.Trigger), string(r.Mode)).Inc()
	}
}

func (m *Metrics) phaseDone(p Phase, d time.Duration) {
	m.phaseDuration.WithLabelValues(string(p)).Observe(d.Seconds())
}

func (m *Metrics) stepError(p Phase, r Reason) { m.errors.WithLabelValues(string(p), string(r)).Inc() }

// KeyAge records the age of a key's current credential.
func (m *Metrics) KeyAge(key string, age time.Duration) {
	m.keyAge.WithLabelValues(key).Set(age.Seconds())
}

func (m *Metrics) drainReading(key string, v float64) { m.drain.WithLabelValues(key).Set(v) }
func (m *Metrics) minted(key string)                  { m.mints.WithLabelValues(key).Inc() }
func (m *Metrics) revoked(key string)                 { m.revokes.WithLabelValues(key).Inc() }
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

func (m *Metrics) watchAlert(key string) { m.watchAlerts.WithLabelValues(key).Inc() }

// KeyMaxAge records a key's effective max_age.
func (m *Metrics) KeyMaxAge(key string, d time.Duration) {
	m.keyMaxAge.WithLabelValues(key).Set(d.Seconds())
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
			m.held.WithLabelValues(r.Key, string(r.Hold)).Set(max(now.Sub(since).Seconds(), 1))
		}
	}
}

func (m *Metrics) outbox(pending int, oldest time.Duration) {
	m.outboxPending.Set(float64(pending))
	m.outboxOldest.Set(oldest.Seconds())
}
