package rotator

import (
	"fmt"
	"time"
)

// Quiet time and watch time are time rekey observed, not time that passed.
// A poll answers for the moments around it (a rate over a short window, the
// last attestation of each consumer), so time accrues only between two
// consecutive polls: when the gap since the previous poll is longer than
// the poll interval plus slack — the daemon was down, the rotation's lease
// moved to another daemon, the store did not answer — nobody looked in
// between, and the quiet clock restarts at the current reading (the watch
// does not count the gap). Otherwise a 14-minute outage and one zero
// reading would pass a 15-minute quiet period.

// minGapSlack is the least slack a poll may be late by and still continue
// the observation of the previous one.
const minGapSlack = 5 * time.Second

// maxObservationGap is the longest gap between the end of one poll and the
// start of the next that still counts as one uninterrupted observation:
// the poll interval, plus half of it (at least minGapSlack) for a busy
// engine, plus the engine's own poll interval (how late it notices that a
// rotation is due).
func (s *step) maxObservationGap(interval time.Duration) time.Duration {
	return interval + max(interval/2, minGapSlack) + s.e.poll
}

// late reports whether a poll at now runs later than the rotation was
// scheduled for (the time its previous poll asked to be woken at) by more
// than minGapSlack plus the engine's poll interval: the daemon was down
// or the lease moved meanwhile. This bounds the unobserved time by the
// schedule, not only by maxObservationGap, which with a poll interval
// close to the quiet period would let a gap longer than the quiet period
// count as observed.
func (s *step) late(now time.Time) bool {
	due := s.r.NextAttemptAt
	return !due.IsZero() && now.Sub(due) > minGapSlack+s.e.poll
}

// pollInterval is a drain or watch poll interval with its default.
func pollInterval(d time.Duration) time.Duration {
	if d <= 0 {
		return 10 * time.Second
	}
	return d
}

// observationGap reports the unobserved gap before a poll at now that
// follows a poll that ended at last: zero when the observation goes on
// uninterrupted. A running clock without a recorded last poll (a state
// written before polls were recorded) is a gap of unknown length, ok false.
func observationGap(now, last time.Time, limit time.Duration) (gap time.Duration, known, broken bool) {
	if last.IsZero() {
		return 0, false, true
	}
	gap = now.Sub(last)
	return gap, true, gap > limit
}

// restartQuietAfterGap applies the gap rule to a running quiet clock before
// a poll at now: after a break in observation the clock stops (the poll's
// zero reading restarts it at now) and the break is remembered for the
// waiting text. It returns the audit detail of the restart, or nil.
func (s *step) restartQuietAfterGap(ds *DrainState, now time.Time, interval time.Duration) map[string]string {
	if ds.QuietSince.IsZero() {
		return nil
	}
	limit := s.maxObservationGap(interval)
	gap, known, broken := observationGap(now, ds.LastPollAt, limit)
	if !broken && !s.late(now) {
		return nil
	}
	ds.QuietSince, ds.QuietGap = time.Time{}, gap
	if !known {
		ds.QuietGap = -1
	}
	s.e.log.Warn("drain gate: a gap in observation restarts the quiet clock", "rotation", s.r.ID, "key", s.r.Key, "gap", gapText(ds.QuietGap), "limit", limit.String())
	return map[string]string{"gap": gapText(ds.QuietGap), "limit": limit.String(), "phase": string(s.r.Phase)}
}

// gapText words a recorded gap (-1: of unknown length).
func gapText(d time.Duration) string {
	if d < 0 {
		return "unknown"
	}
	return d.Round(time.Second).String()
}

// quietRestartNote is the waiting text's note on a quiet clock that
// restarted after a gap in observation ("" when it did not).
func quietRestartNote(ds DrainState) string {
	switch {
	case ds.QuietGap == 0 || ds.QuietSince.IsZero():
		return ""
	case ds.QuietGap < 0:
		return " (quiet clock restarted: the time since the last poll is unknown)"
	}
	return fmt.Sprintf(" (quiet clock restarted after a %s gap in observation)", gapText(ds.QuietGap))
}
