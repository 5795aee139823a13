package rotator

import (
	"context"
	"fmt"
	"time"
)

// How a rotation left the drain gate (the "exit" field of its phase event),
// so that every exit is announced as what it was. A timeout is a hold
// (HoldDrainTimeout); a denial or cancel there is a rollback.
const (
	DrainPassed         = "passed"          // quiet for quiet_period
	DrainOverridden     = "overridden"      // an exposure of the old key skipped the gate
	DrainApprovedAnyway = "approved_anyway" // people approved revoking although traffic had not drained
)

// drain is the gate between cut-over and revocation: it passes only after
// the traffic source reported zero for QuietPeriod without a break. An error
// or a non-zero reading restarts the quiet period; past MaxWait the rotation
// holds for a human and is never revoked on a timer alone.
func (s *step) drain(ctx context.Context) outcome {
	p := s.k.Drain
	now := s.now()
	ds := &s.r.Drain
	if ds.Override != "" { // "revoke": a human approved; "exposure": the old key leaked
		exit := DrainApprovedAnyway
		if ds.Override == "exposure" {
			exit = DrainOverridden
		}
		return advance("drain.overridden", map[string]string{"by": ds.Override, "exit": exit, "approved_by": ds.OverrideBy,
			"polls": fmt.Sprint(ds.Polls), "last_value": fmt.Sprint(ds.LastValue), "source": p.SourceName})
	}
	if s.r.Hold == HoldDrainTimeout {
		// A human decides: approve (revoke anyway), retry (keep waiting)
		// or cancel (roll back). The same hold again writes nothing.
		return holdFor(HoldDrainTimeout, s.r.HoldDetail, zeroTime, SeverityCritical)
	}
	if ds.StartedAt.IsZero() {
		ds.StartedAt = now
	}
	q := s.trafficQuery(ds.StartedAt)
	var reading Reading
	var err error
	if p.Source != nil {
		reading, err = p.Source.Unauthorized(ctx, q)
	}
	ds.Polls++
	switch {
	case err != nil && IsPermanent(err):
		// A query that can never answer (syntax error, auth) must not
		// poll silently until max_wait: hold and tell a human now.
		ds.LastError = err.Error()
		ds.QuietSince = time.Time{}
		ds.Escalated = true
		return holdFor(HoldDrainTimeout, fmt.Sprintf("traffic source %s cannot answer (%v); fix the query or source, then retry, approve to revoke anyway, or cancel to roll back", p.SourceName, err), zeroTime, SeverityCritical)
	case err != nil:
		ds.LastError = err.Error()
		ds.QuietSince = time.Time{}
		s.e.log.Warn("drain gate: traffic source did not answer; not passing", "rotation", s.r.ID, "key", s.r.Key, "source", p.SourceName, "err", err)
	case reading.Value > 0:
		ds.LastError = ""
		ds.LastValue = reading.Value
		ds.QuietSince = time.Time{}
	default:
		ds.LastError = ""
		ds.LastValue = 0
		if ds.QuietSince.IsZero() {
			ds.QuietSince = now
		}
	}
	s.e.metrics.drainReading(s.r.Key, ds.LastValue)
	if !ds.QuietSince.IsZero() && now.Sub(ds.QuietSince) >= p.QuietPeriod {
		return advance("drained", map[string]string{
			"exit": DrainPassed, "quiet_for": now.Sub(ds.QuietSince).Round(time.Millisecond).String(), "polls": fmt.Sprint(ds.Polls), "source": p.SourceName,
		})
	}
	if p.MaxWait > 0 && now.Sub(ds.StartedAt) >= p.MaxWait {
		ds.Escalated = true
		detail := fmt.Sprintf("traffic has not drained after %s (last 401 rate %g, source %s, last error %q); approve to revoke anyway, retry to keep waiting, or cancel to roll back",
			p.MaxWait, ds.LastValue, p.SourceName, ds.LastError)
		return holdFor(HoldDrainTimeout, detail, zeroTime, SeverityCritical)
	}
	wait := p.PollInterval
	if wait <= 0 {
		wait = 10 * time.Second
	}
	if !ds.QuietSince.IsZero() {
		if left := p.QuietPeriod - now.Sub(ds.QuietSince); left < wait {
			wait = left
		}
	}
	return waitUntil(now.Add(wait))
}

func (s *step) trafficQuery(since time.Time) TrafficQuery {
	q := TrafficQuery{Key: s.r.Key, Query: s.k.Drain.Query, Since: since}
	if c := s.oldCred(); c != nil {
		q.OldID, q.OldName = c.IssuerID, c.Name
	}
	if c := s.newCred(); c != nil {
		q.NewID, q.NewName = c.IssuerID, c.Name
	}
	return q
}

// watch looks for 401s after the revoke: an unknown caller still using the
// old key. It alerts with the evidence and never re-mints.
func (s *step) watch(ctx context.Context) outcome {
	p := s.k.Watch
	now := s.now()
	ws := &s.r.Watch
	if ws.StartedAt.IsZero() {
		ws.StartedAt = now
	}
	var alert []Event
	var alertAudit []AuditEvent
	if p.Period > 0 && s.k.Drain.Source != nil {
		reading, err := s.k.Drain.Source.Unauthorized(ctx, s.trafficQuery(ws.StartedAt))
		if err != nil {
			ws.Errors++
		} else {
			ws.Readings++
		}
		if err == nil && reading.Value > 0 {
			ws.LastValue = reading.Value
			if !ws.Alerted {
				ws.Alerted = true
				s.e.metrics.watchAlert(s.r.Key)
				msg := fmt.Sprintf("%s: 401 traffic after revoking %s (rate %g, source %s, query %q): an unknown caller still uses the old key; investigate — nothing is re-minted",
					s.r.Key, CredentialName(s.r.Key, s.r.OldGeneration), reading.Value, s.k.Drain.SourceName, s.k.Drain.Query)
				alertAudit = append(alertAudit, s.auditEvent("watch.alert", map[string]string{"rate": fmt.Sprint(reading.Value), "detail": reading.Detail}))
				alert = append(alert, s.event(EventWatchAlert, SeverityCritical, msg, map[string]string{"rate": fmt.Sprint(reading.Value), "query": s.k.Drain.Query}))
			}
		}
	}
	var o outcome
	if now.Sub(ws.StartedAt) >= p.Period {
		if p.Period > 0 && s.k.Drain.Source != nil && ws.Readings == 0 {
			alert = append(alert, s.event(EventWatchAlert, SeverityWarning, fmt.Sprintf("%s: the post-revoke watch ended without one successful reading from %s (%d errors); nobody looked for callers still using the old key", s.r.Key, s.k.Drain.SourceName, ws.Errors), nil))
		}
		o = advance("watched", map[string]string{"alerted": fmt.Sprint(ws.Alerted), "readings": fmt.Sprint(ws.Readings), "errors": fmt.Sprint(ws.Errors)})
	} else {
		wait := p.PollInterval
		if wait <= 0 {
			wait = 10 * time.Second
		}
		if left := p.Period - now.Sub(ws.StartedAt); left < wait {
			wait = left
		}
		o = waitUntil(now.Add(wait))
	}
	o.audits, o.events = alertAudit, alert
	return o
}
