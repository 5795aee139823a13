package rotator

import "time"

// Key is a managed credential identity as the engine sees it: configuration
// already resolved into the adapters that serve it.
type Key struct {
	Name   string
	Issuer Issuer
	// IssuerName is the configured name of the issuer, for messages.
	IssuerName string
	// Params are passed to the issuer unchanged: scopes, cluster allow-list…
	Params map[string]any
	Owners []string
	Sinks  []SinkBinding
	// Policies are evaluated in order; the first decision that is not
	// ActionNone wins.
	Policies []Policy
	Approval ApprovalPolicy
	Drain    DrainPolicy
	Watch    WatchPolicy
	// Verify probes the new credential (issuer must implement Verifier).
	Verify bool
	// Windows restrict when staged rotations may start; empty = any time.
	Windows []Window
	// Notifiers receive this key's events; nil = all.
	Notifiers []string
	// Bootstrap mints generation 1 when the key has no credential yet.
	Bootstrap bool
	// Reminders chase the people a rotation of this key waits on (zero:
	// DefaultReminders).
	Reminders Reminders
	// MaxAge is the key's effective max_age, for the metric beside its age
	// (the policies themselves decide).
	MaxAge time.Duration
	// Unauthorized, when set, is asked at every evaluation for traffic on
	// the key's lingering (non-current, unrevoked) credentials; policies
	// read it from PolicyInput.Traffic.
	Unauthorized *TrafficWatch
	// Decommission says who must agree before the key is decommissioned.
	Decommission DecommissionPolicy
}

// DecommissionPolicy guards the one rotation that cannot be undone.
type DecommissionPolicy struct {
	// SecondPerson: a second, distinct person (by canonical identity)
	// approves a decommission before anything is revoked.
	SecondPerson bool
}

// TrafficWatch is a traffic source and query used by a policy.
type TrafficWatch struct {
	Source     TrafficSource
	SourceName string
	Query      string
}

// SinkBinding is one place a key is delivered to.
type SinkBinding struct {
	SinkName string
	Sink     Sink
	Target   Target
}

// ApprovalPolicy says which gates need how many approvals from whom.
type ApprovalPolicy struct {
	Gates     []Gate
	Approvers []string // empty = anyone but the requester
	Required  int      // distinct approvers needed; 0 means 1
	// RevokeRequired overrides Required for the revoke gate (the
	// destructive step), e.g. 2 for a two-person rule; 0 = Required.
	RevokeRequired int
	ExpireAfter    time.Duration
}

// Needs reports whether gate g requires approval.
func (a ApprovalPolicy) Needs(g Gate) bool {
	for _, x := range a.Gates {
		if x == g {
			return true
		}
	}
	return false
}

// RequiredApprovals is the number of distinct approvers gate g needs.
func (a ApprovalPolicy) RequiredApprovals(g Gate) int {
	n := a.Required
	if (g == GateRevoke || g == GateDrain) && a.RevokeRequired > 0 {
		n = a.RevokeRequired
	}
	if n < 1 {
		return 1
	}
	return n
}

// DrainPolicy configures the gate between cut-over and revocation.
//
// Checks are the questions the gate asks (old-key use, failures with the
// new key), each of the source that answers it; every check must read zero
// for QuietPeriod. A policy with no Checks but a Source asks that source
// its own question (a 401 rate). Sources lists the gate's sources with
// what each can answer, for the statement of what the gate proves.
type DrainPolicy struct {
	Source       TrafficSource
	SourceName   string
	Query        string
	Checks       []DrainCheck
	Sources      []GateSource
	QuietPeriod  time.Duration
	MaxWait      time.Duration
	PollInterval time.Duration
	// ReloadWithin is the declared reload interval of the slowest consumer
	// (drain.consumers_reload_within): when the gate cannot see old-key
	// use, it waits at least this long.
	ReloadWithin time.Duration
}

// WatchPolicy configures the post-revoke watch.
type WatchPolicy struct {
	Period       time.Duration
	PollInterval time.Duration
}

// Window is a recurring time range in which staged rotations may start.
type Window struct {
	Days     []time.Weekday // empty = every day
	Start    time.Duration  // offset from midnight
	End      time.Duration  // offset from midnight; End < Start wraps midnight
	Location *time.Location
}

// Contains reports whether t falls inside the window.
func (w Window) Contains(t time.Time) bool {
	loc := w.Location
	if loc == nil {
		loc = time.UTC
	}
	t = t.In(loc)
	midnight := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
	off := t.Sub(midnight)
	day := t.Weekday()
	if w.End <= w.Start { // wraps midnight: the part after midnight belongs to the previous day
		if off < w.End {
			day = (day + 6) % 7
			return w.dayAllowed(day)
		}
		return off >= w.Start && w.dayAllowed(day)
	}
	return off >= w.Start && off < w.End && w.dayAllowed(day)
}

func (w Window) dayAllowed(d time.Weekday) bool {
	if len(w.Days) == 0 {
		return true
	}
	for _, x := range w.Days {
		if x == d {
			return true
		}
	}
	return false
}

// InWindow reports whether staged rotations may start at t.
func (k *Key) InWindow(t time.Time) bool {
	if len(k.Windows) == 0 {
		return true
	}
	for _, w := range k.Windows {
		if w.Contains(t) {
			return true
		}
	}
	return false
}

// Reminders say how a wait on a person is chased: a reminder every Every,
// critical (paging on-call) from EscalateAfter on, and a wait for a
// manually minted secret rolled back after SecretExpireAfter (nothing is
// live yet). Other waits never expire on their own: they escalate.
type Reminders struct {
	Every             time.Duration
	EscalateAfter     time.Duration
	SecretExpireAfter time.Duration
}

// DefaultReminders: hourly, escalating after four hours; a secret nobody
// minted within a day is given up.
var DefaultReminders = Reminders{Every: time.Hour, EscalateAfter: 4 * time.Hour, SecretExpireAfter: 24 * time.Hour}

func (r Reminders) orDefault() Reminders {
	if r.Every <= 0 {
		r.Every = DefaultReminders.Every
	}
	if r.EscalateAfter <= 0 {
		r.EscalateAfter = DefaultReminders.EscalateAfter
	}
	if r.SecretExpireAfter <= 0 {
		r.SecretExpireAfter = DefaultReminders.SecretExpireAfter
	}
	return r
}
