package rotator

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Question is one of the two things the drain gate asks before a revoke.
// They are different questions: before the revoke the old key still works,
// so its requests answer 200 and a 401 rate cannot see who still holds it.
type Question string

const (
	// OldKeyUse: is the credential being retired still used, whatever the
	// answer (200 included)? Zero for the quiet period means every consumer
	// has moved to the new key, however slowly it reloads.
	OldKeyUse Question = "old_key_use"
	// NewKeyFailures: do requests fail authentication with the new key, or
	// with a key the server cannot identify (a truncated or mangled copy)?
	NewKeyFailures Question = "new_key_failures"
)

// Questions lists every question, in the order the gate asks them.
var Questions = []Question{OldKeyUse, NewKeyFailures}

// Known reports whether q is a question the gate knows.
func (q Question) Known() bool { return slices.Contains(Questions, q) }

// Counts says what a reading for q counts, for messages.
func (q Question) Counts() string {
	switch q {
	case OldKeyUse:
		return "requests made with the old key (any status)"
	case NewKeyFailures:
		return "401s with the new key or an unidentifiable key"
	}
	return "401s (the source's own query)"
}

// DrainCheck is one question of a drain gate and the source that answers it.
type DrainCheck struct {
	Question   Question
	Source     TrafficSource
	SourceName string
	// Query is the key's source-specific query for this question; empty
	// uses the source's default.
	Query string
}

// GateSource is a traffic source of a drain gate and what it can answer
// for the key.
type GateSource struct {
	Name    string
	Type    string
	Answers []Question
}

// GateSpec is what a drain gate is made of: enough to say what it proves
// without building or asking anything (validate, doctor, describe).
type GateSpec struct {
	Key     string
	Sources []GateSource
	// Require lists the questions the gate asks; every one must be
	// answered zero for the quiet period.
	Require      []Question
	QuietPeriod  time.Duration
	MaxWait      time.Duration
	ReloadWithin time.Duration // drain.consumers_reload_within
}

// GateProof says what a passing gate proves and what it cannot see.
type GateProof struct {
	Key   string     `json:"key"`
	Sees  []Question `json:"sees"`
	Blind []Question `json:"blind,omitempty"`
	// Quiet is the effective quiet period: at least ReloadWithin when the
	// gate cannot see old-key use.
	Quiet time.Duration `json:"-"`
	// QuietPeriod is Quiet in seconds (for the API and the CLI).
	QuietPeriod float64 `json:"quiet_period"`
	// Proves is one paragraph for people.
	Proves string `json:"proves"`
	// Warning is set when some consumers can fail: the gate cannot see
	// old-key use and no reload interval is declared.
	Warning string `json:"warning,omitempty"`
}

// EffectiveQuiet is the quiet period the gate waits: when it cannot see
// old-key use, at least the declared reload interval of the slowest
// consumer, so that every consumer has reloaded before the revoke.
func (s GateSpec) EffectiveQuiet() time.Duration {
	if !slices.Contains(s.Require, OldKeyUse) && s.ReloadWithin > s.QuietPeriod {
		return s.ReloadWithin
	}
	return s.QuietPeriod
}

// answeredBy names the sources answering q.
func (s GateSpec) answeredBy(q Question) []string {
	var out []string
	for _, src := range s.Sources {
		if slices.Contains(src.Answers, q) {
			out = append(out, src.Name)
		}
	}
	return out
}

// ProveGate states what a gate proves when it passes: which question each
// source answers, what it cannot see, and the consequence for consumers.
// validate, doctor, describe and each rotation's notification show it.
func ProveGate(s GateSpec) GateProof {
	p := GateProof{Key: s.Key, Quiet: s.EffectiveQuiet()}
	p.QuietPeriod = p.Quiet.Seconds()
	for _, q := range Questions {
		if slices.Contains(s.Require, q) {
			p.Sees = append(p.Sees, q)
		} else {
			p.Blind = append(p.Blind, q)
		}
	}
	quiet := dur(p.Quiet)
	var b strings.Builder
	seesOld, seesNew := slices.Contains(p.Sees, OldKeyUse), slices.Contains(p.Sees, NewKeyFailures)
	switch {
	case seesOld && seesNew:
		fmt.Fprintf(&b, "revokes only after nobody used the old key (%s) and no request failed authentication with the new or an unidentifiable key (%s) for %s: safe for consumers that reload at any speed",
			strings.Join(s.answeredBy(OldKeyUse), ", "), strings.Join(s.answeredBy(NewKeyFailures), ", "), quiet)
	case seesOld:
		fmt.Fprintf(&b, "revokes only after nobody used the old key (%s) for %s: safe for consumers that reload at any speed; it does not see failures with the new key (a consumer with a broken copy)",
			strings.Join(s.answeredBy(OldKeyUse), ", "), quiet)
	case seesNew:
		fmt.Fprintf(&b, "sees only failed authentication (%s), not use of the old key: the old key answers 200 until the revoke, so the gate passes after %s of no 401s whatever consumers still hold",
			strings.Join(s.answeredBy(NewKeyFailures), ", "), quiet)
	default:
		names := make([]string, 0, len(s.Sources))
		for _, src := range s.Sources {
			names = append(names, src.Name)
		}
		fmt.Fprintf(&b, "observes nothing (%s): it waits %s and revokes", strings.Join(names, ", "), quiet)
	}
	if !seesOld {
		if s.ReloadWithin > 0 {
			fmt.Fprintf(&b, "; consumers that reload within %s (drain.consumers_reload_within) are safe, a slower one gets 401s", dur(s.ReloadWithin))
		} else {
			p.Warning = fmt.Sprintf("%s: the drain gate cannot see old-key use; consumers that reload slower than %s will get 401s: declare drain.consumers_reload_within (the slowest consumer's reload interval) or add a source that sees old-key use (kubeadapt, consumers, a prometheus old_key_query)", s.Key, quiet)
			fmt.Fprintf(&b, "; consumers that reload slower than %s will get 401s", quiet)
		}
	}
	if seesOld {
		if s.MaxWait > 0 {
			fmt.Fprintf(&b, "; a consumer that never reloads holds it until max_wait %s, then a person decides", dur(s.MaxWait))
		} else {
			b.WriteString("; a consumer that never reloads holds it until a person decides")
		}
	}
	p.Proves = b.String()
	return p
}

// dur prints a duration without trailing zero units (15m, not 15m0s).
func dur(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Gate returns the spec of the key's drain gate.
func (p DrainPolicy) Gate(key string) GateSpec {
	s := GateSpec{Key: key, Sources: p.Sources, Require: p.Require(), QuietPeriod: p.QuietPeriod, MaxWait: p.MaxWait, ReloadWithin: p.ReloadWithin}
	if len(s.Sources) == 0 && p.SourceName != "" {
		s.Sources = []GateSource{{Name: p.SourceName}}
	}
	return s
}

// Require lists the questions the gate asks.
func (p DrainPolicy) Require() []Question {
	var out []Question
	for _, c := range p.checks() {
		q := c.Question
		if q == "" { // a source asked its own question: a 401 rate
			if p.answersNothing(c.SourceName) {
				continue // fixed: it observes nothing
			}
			q = NewKeyFailures
		}
		if !slices.Contains(out, q) {
			out = append(out, q)
		}
	}
	return out
}

// answersNothing reports whether the gate's source name is declared to
// answer no question (the fixed source). A source not declared (tests,
// older wiring) is taken to answer its own question.
func (p DrainPolicy) answersNothing(name string) bool {
	for _, src := range p.Sources {
		if src.Name == name {
			return len(src.Answers) == 0
		}
	}
	return false
}

// checks returns the gate's checks; a policy with only Source set (tests,
// older wiring) asks that source its own question.
func (p DrainPolicy) checks() []DrainCheck {
	if len(p.Checks) > 0 {
		return p.Checks
	}
	if p.Source == nil {
		return nil
	}
	return []DrainCheck{{Source: p.Source, SourceName: p.SourceName, Query: p.Query}}
}
