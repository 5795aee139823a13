package rotator

import (
	"fmt"
	"strings"
)

// DrainReading is the last answer of one check of a drain gate: which
// question, from which source, and what it said (or why it did not). The
// waiting text says from these which question is not yet zero and where —
// "the old key is still used: 1 consumer behind (source attested)" — never
// "401 traffic" for what counts old-key use.
type DrainReading struct {
	Question Question `json:"question,omitempty"` // "": the source's own question (a 401 rate)
	Source   string   `json:"source"`
	Value    float64  `json:"value"`
	Error    string   `json:"error,omitempty"`
}

// sourceType is the declared type of the gate's source name ("" when not
// declared).
func (p DrainPolicy) sourceType(name string) string {
	for _, src := range p.Sources {
		if src.Name == name {
			return src.Type
		}
	}
	return ""
}

// busyWords says what a non-zero reading means, with its source.
func (p DrainPolicy) busyWords(r DrainReading) string {
	switch r.Question {
	case OldKeyUse:
		if p.sourceType(r.Source) == "consumers" {
			return fmt.Sprintf("the old key is still used: %g consumer(s) behind (source %s)", r.Value, r.Source)
		}
		return fmt.Sprintf("the old key is still used: %g req/s with the old key (source %s)", r.Value, r.Source)
	case NewKeyFailures:
		return fmt.Sprintf("new key failing: %g 401/s with the new or an unidentifiable key (source %s)", r.Value, r.Source)
	}
	return fmt.Sprintf("requests failing authentication: %g 401/s (source %s)", r.Value, r.Source)
}

// quietWords says what a zero reading means, with its source.
func (p DrainPolicy) quietWords(r DrainReading) string {
	switch {
	case r.Question == OldKeyUse:
		return "no old-key use on " + r.Source
	case r.Question == NewKeyFailures:
		return "no failures on " + r.Source
	case p.answersNothing(r.Source):
		return r.Source + " observes nothing"
	}
	return "no 401s on " + r.Source
}

// readingsText joins the words of the readings ok selects.
func readingsText(rs []DrainReading, ok func(DrainReading) bool, words func(DrainReading) string) string {
	var out []string
	for _, r := range rs {
		if ok(r) {
			out = append(out, words(r))
		}
	}
	return strings.Join(out, "; ")
}

// busyDetail is the waiting text of a gate whose last poll was not zero.
func busyDetail(p DrainPolicy, ds DrainState) string {
	busy := readingsText(ds.Readings, func(r DrainReading) bool { return r.Error == "" && r.Value > 0 }, p.busyWords)
	if busy == "" { // a state from before readings were recorded
		busy = fmt.Sprintf("source %s reports %g", p.sourceNames(), ds.LastValue)
	}
	return busy + "; the quiet period restarts when every question reads zero"
}

// quietDetail is the waiting text of a gate counting quiet time.
func quietDetail(p DrainPolicy, ds DrainState, quietFor, of string) string {
	zero := readingsText(ds.Readings, func(r DrainReading) bool { return r.Error == "" }, p.quietWords)
	if zero == "" {
		zero = "nothing on " + p.sourceNames()
	}
	return fmt.Sprintf("quiet for %s of %s: %s", quietFor, of, strings.ReplaceAll(zero, "; ", ", "))
}

// errorSources names the checks that did not answer at the last poll.
func errorSources(p DrainPolicy, ds DrainState) string {
	var out []string
	for _, r := range ds.Readings {
		if r.Error != "" && !containsString(out, r.Source) {
			out = append(out, r.Source)
		}
	}
	if len(out) == 0 {
		return p.sourceNames()
	}
	return strings.Join(out, ", ")
}

// watchDetail is the waiting text of the post-revoke watch: what it looks
// for, per check — or that its gate observes nothing.
func watchDetail(p DrainPolicy, gen int) string {
	var parts []string
	for _, c := range p.checks() {
		switch {
		case c.Question == OldKeyUse:
			parts = append(parts, "use of the revoked key on "+c.SourceName)
		case c.Question == NewKeyFailures:
			parts = append(parts, "401s with the new or an unidentifiable key on "+c.SourceName)
		case p.answersNothing(c.SourceName):
		default:
			parts = append(parts, "401s on "+c.SourceName)
		}
	}
	if len(parts) == 0 {
		return fmt.Sprintf("waiting the watch period after revoking generation %d; source %s observes nothing, so no caller of the old key is looked for", gen, p.sourceNames())
	}
	return fmt.Sprintf("watching for callers of the revoked generation %d: %s", gen, strings.Join(parts, ", "))
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
