package rotator

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
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

// drain is the gate between cut-over and revocation: it asks each of its
// checks (is the old key still used? does the new key fail anywhere?) and
// passes only after every one reported zero for the quiet period without a
// break (at least drain.consumers_reload_within when no check sees old-key
// use). An error or a non-zero reading restarts the quiet period; past
// MaxWait the rotation holds for a human and is never revoked on a timer
// alone.
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
			"polls": fmt.Sprint(ds.Polls), "last_value": fmt.Sprint(ds.LastValue), "source": p.sourceNames()})
	}
	if s.r.Hold == HoldDrainTimeout {
		// A human decides: approve (revoke anyway), retry (keep waiting)
		// or cancel (roll back). The same hold again writes nothing.
		return holdFor(HoldDrainTimeout, s.r.HoldDetail, zeroTime, SeverityCritical)
	}
	if ds.StartedAt.IsZero() {
		ds.StartedAt = now
	}
	quiet := p.Gate(s.r.Key).EffectiveQuiet()
	interval := pollInterval(p.PollInterval)
	gap := s.restartQuietAfterGap(ds, now, interval)
	var total float64
	var errs []string
	values := map[string]float64{}
	var readings []DrainReading
	for _, c := range p.checks() {
		q := s.trafficQuery(ds.StartedAt)
		q.Question, q.Query = c.Question, c.Query
		reading, err := c.Source.Unauthorized(ctx, q)
		dr := DrainReading{Question: c.Question, Source: c.SourceName, Value: reading.Value}
		if err != nil {
			dr.Value, dr.Error = 0, err.Error()
		}
		readings = append(readings, dr)
		switch {
		case err != nil && IsPermanent(err):
			// A query that can never answer (syntax error, auth) must not
			// poll silently until max_wait: hold and tell a human now.
			ds.Polls++
			ds.LastError = err.Error()
			ds.QuietSince = time.Time{}
			ds.Escalated = true
			return holdFor(HoldDrainTimeout, fmt.Sprintf("traffic source %s cannot answer %s (%v); fix the query or source, then retry, approve to revoke anyway, or cancel to roll back", c.SourceName, checkLabel(c), err), zeroTime, SeverityCritical)
		case err != nil:
			errs = append(errs, err.Error())
			s.e.log.Warn("drain gate: traffic source did not answer; not passing", "rotation", s.r.ID, "key", s.r.Key, "source", c.SourceName, "question", c.Question, "err", err)
		default:
			total += reading.Value
			values[checkLabel(c)] = reading.Value
		}
	}
	ds.Polls++
	ds.LastValues = values
	ds.Readings = readings
	ds.LastPollAt = s.now()
	switch {
	case len(errs) > 0:
		ds.LastError = strings.Join(errs, "; ")
		ds.QuietSince, ds.QuietGap = time.Time{}, 0
	case total > 0:
		ds.LastError = ""
		ds.LastValue = total
		ds.QuietSince, ds.QuietGap = time.Time{}, 0
	default:
		ds.LastError = ""
		ds.LastValue = 0
		if ds.QuietSince.IsZero() {
			ds.QuietSince = now
		}
	}
	s.e.metrics.drainReading(s.r.Key, ds.LastValue)
	if !ds.QuietSince.IsZero() && now.Sub(ds.QuietSince) >= quiet {
		return advance("drained", map[string]string{
			"exit": DrainPassed, "quiet_for": now.Sub(ds.QuietSince).Round(time.Millisecond).String(), "polls": fmt.Sprint(ds.Polls), "source": p.sourceNames(),
			"asked": p.asked(),
		})
	}
	if p.MaxWait > 0 && now.Sub(ds.StartedAt) >= p.MaxWait {
		ds.Escalated = true
		return holdFor(HoldDrainTimeout, s.drainTimeoutDetail(), zeroTime, SeverityCritical)
	}
	wait := interval
	if !ds.QuietSince.IsZero() {
		if left := quiet - now.Sub(ds.QuietSince); left < wait {
			wait = left
		}
	}
	o := waitUntil(now.Add(wait))
	if gap != nil {
		o = o.recording("drain.quiet_restarted", gap)
	}
	return o
}

// drainTimeoutDetail says why the gate holds past max_wait: the last
// reading of each question, in words, and the last error.
func (s *step) drainTimeoutDetail() string {
	p, ds := s.k.Drain, &s.r.Drain
	last := readingsText(ds.Readings, func(r DrainReading) bool { return r.Error == "" && r.Value > 0 }, p.busyWords)
	if last == "" {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(ds.LastValues)) {
			parts = append(parts, fmt.Sprintf("%s %g", k, ds.LastValues[k]))
		}
		last = "last readings: " + cmpOr(strings.Join(parts, ", "), "no reading")
	}
	if ds.LastError != "" {
		last += fmt.Sprintf("; last error: %s", ds.LastError)
	}
	return fmt.Sprintf("traffic has not drained after %s (%s); approve to revoke anyway, retry to keep waiting, or cancel to roll back",
		p.MaxWait, last)
}

// checkLabel names a check in messages and readings: "old_key_use via prom".
func checkLabel(c DrainCheck) string {
	q := c.Question
	if q == "" {
		q = "401 rate"
	}
	return fmt.Sprintf("%s via %s", q, c.SourceName)
}

// sourceNames lists the gate's sources, for the drained audit event.
func (p DrainPolicy) sourceNames() string {
	var out []string
	for _, c := range p.checks() {
		if !slices.Contains(out, c.SourceName) {
			out = append(out, c.SourceName)
		}
	}
	if len(out) == 0 {
		return p.SourceName
	}
	return strings.Join(out, ",")
}

// asked lists the questions the gate asked, for the drained audit event.
func (p DrainPolicy) asked() string {
	var out []string
	for _, q := range p.Require() {
		out = append(out, string(q))
	}
	if len(out) == 0 {
		return "nothing (quiet period only)"
	}
	return strings.Join(out, ",")
}

func (s *step) trafficQuery(since time.Time) TrafficQuery {
	q := TrafficQuery{Key: s.r.Key, Query: s.k.Drain.Query, Since: since, OldGeneration: s.r.OldGeneration, NewGeneration: s.r.NewGeneration}
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
	interval := pollInterval(p.PollInterval)
	if gap, known, broken := observationGap(now, ws.LastPollAt, s.maxObservationGap(interval)); !broken && !s.late(now) {
		ws.Observed += gap
	} else if known {
		ws.Gaps++
		s.e.log.Warn("watch: a gap in observation does not count toward the watch period", "rotation", s.r.ID, "key", s.r.Key, "gap", gapText(gap))
	}
	var alert []Event
	var alertAudit []AuditEvent
	checks := s.k.Drain.checks()
	if p.Period > 0 {
		for _, c := range checks {
			// Only traffic since the revoke counts: requests made before
			// it (a failing caller that held the gate until a person
			// approved anyway) are not "after revoking".
			q := s.trafficQuery(ws.StartedAt)
			q.Question, q.Query, q.NotBefore = c.Question, c.Query, ws.StartedAt
			reading, err := c.Source.Unauthorized(ctx, q)
			if err != nil {
				ws.Errors++
				continue
			}
			ws.Readings++
			if reading.Value <= 0 {
				continue
			}
			ws.LastValue = reading.Value
			if ws.Alerted {
				continue
			}
			ws.Alerted = true
			query := reading.Query
			if query == "" {
				query = c.Query
			}
			if query == "" {
				query = "(the source's default)"
			}
			msg, counts := s.watchMessage(c, reading, query)
			fields := map[string]string{"rate": fmt.Sprint(reading.Value), "query": query, "question": string(c.Question), "counts": counts, "source": c.SourceName}
			alertAudit = append(alertAudit, s.auditEvent("watch.alert", map[string]string{"rate": fmt.Sprint(reading.Value), "detail": reading.Detail, "question": string(c.Question), "source": c.SourceName}))
			alert = append(alert, s.event(EventWatchAlert, SeverityCritical, msg, fields))
		}
	}
	ws.LastPollAt = s.now()
	var o outcome
	if ws.Observed >= p.Period {
		if p.Period > 0 && len(checks) > 0 && ws.Readings == 0 {
			alert = append(alert, s.event(EventWatchAlert, SeverityWarning, fmt.Sprintf("%s: the post-revoke watch ended without one successful reading from %s (%d errors); nobody looked for callers still using the old key", s.r.Key, s.k.Drain.sourceNames(), ws.Errors), nil))
		}
		o = advance("watched", map[string]string{"alerted": fmt.Sprint(ws.Alerted), "readings": fmt.Sprint(ws.Readings), "errors": fmt.Sprint(ws.Errors),
			"observed": ws.Observed.Round(time.Millisecond).String(), "gaps": fmt.Sprint(ws.Gaps)})
	} else {
		wait := interval
		if left := p.Period - ws.Observed; left < wait {
			wait = left
		}
		o = waitUntil(now.Add(wait))
	}
	o.audits, o.events = alertAudit, alert
	return o
}

// watchMessage words a post-revoke alert by what the reading counts: use
// of the revoked key is an unknown caller; failures with the new or an
// unidentifiable key are a broken consumer, not necessarily the old key.
func (s *step) watchMessage(c DrainCheck, r Reading, query string) (msg, counts string) {
	old := CredentialName(s.r.Key, s.r.OldGeneration)
	counts = c.Question.Counts()
	switch c.Question {
	case OldKeyUse:
		msg = fmt.Sprintf("%s: the revoked key %s is still used after the revoke (%s: %g, source %s, query %s): an unknown caller still holds the old key; investigate — nothing is re-minted",
			s.r.Key, old, counts, r.Value, c.SourceName, query)
	case NewKeyFailures:
		msg = fmt.Sprintf("%s: requests fail authentication after revoking %s (%s: %g, source %s, query %s): a caller has a key that does not work — perhaps the old one, perhaps a broken copy; investigate — nothing is re-minted",
			s.r.Key, old, counts, r.Value, c.SourceName, query)
	default:
		msg = fmt.Sprintf("%s: 401 traffic after revoking %s (%s: %g, source %s, query %s): an unknown caller still uses the old key; investigate — nothing is re-minted",
			s.r.Key, old, counts, r.Value, c.SourceName, query)
	}
	return msg, counts
}
