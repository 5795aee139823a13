package policies

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// Reasons of the maxage policy (see the package documentation).
const (
	ReasonNoCredential      = "no_credential"
	ReasonUnknownAge        = "unknown_age"
	ReasonWithinMaxAge      = "within_max_age"
	ReasonMaxAgeApproaching = "max_age_approaching"
	ReasonMaxAgeExceeded    = "max_age_exceeded"
)

// DefaultMaxAge is the max_age of a key that sets none.
const DefaultMaxAge = 90 * 24 * time.Hour

// MaxAgeName is the name of the maxage policy.
const MaxAgeName = "maxage"

// MaxAge rotates a key once its current credential is MaxAge old, and warns
// WarnBefore ahead of that. In YAML (under a key, or its defaults):
//
//	policies:
//	  max_age: 90d       # default (0 also means 90d)
//	  warn_before: 14d   # default 0: no warning
type MaxAge struct {
	MaxAge     time.Duration `koanf:"max_age"`
	WarnBefore time.Duration `koanf:"warn_before"`
}

// DefaultMaxAgePolicy returns the defaults: max_age 90d, no warning.
func DefaultMaxAgePolicy() MaxAge {
	return MaxAge{MaxAge: DefaultMaxAge}
}

// Validate reports every problem, each prefixed with its field name. A zero
// max_age stands for DefaultMaxAge.
func (p MaxAge) Validate() error {
	var errs []error
	if p.MaxAge < 0 {
		errs = append(errs, errors.New("max_age: must not be negative"))
	}
	if p.WarnBefore < 0 {
		errs = append(errs, errors.New("warn_before: must not be negative"))
	} else if p.WarnBefore >= p.maxAge() {
		errs = append(errs, fmt.Errorf("warn_before: must be shorter than max_age (%s)", formatAge(p.maxAge())))
	}
	return errors.Join(errs...)
}

func (p MaxAge) maxAge() time.Duration {
	if p.MaxAge <= 0 {
		return DefaultMaxAge
	}
	return p.MaxAge
}

// Name implements rotator.Policy.
func (p MaxAge) Name() string { return MaxAgeName }

// Evaluate implements rotator.Policy. A zero MaxAge means DefaultMaxAge.
func (p MaxAge) Evaluate(in rotator.PolicyInput) rotator.Decision {
	d := rotator.Decision{Action: rotator.ActionNone, Policy: MaxAgeName}
	if in.Current == nil {
		d.Reason = ReasonNoCredential
		d.Detail = "no current credential"
		return d
	}
	created := in.Current.CreatedAt
	if created.IsZero() {
		d.Action = rotator.ActionWarn
		d.Reason = ReasonUnknownAge
		d.Detail = fmt.Sprintf("current credential generation %d has no creation time", in.Current.Generation)
		return d
	}
	maxAge := p.maxAge()
	age := in.Now.Sub(created)
	d.Due = created.Add(maxAge)
	switch {
	case age >= maxAge:
		d.Action = rotator.ActionRotate
		d.Trigger = rotator.TriggerAge
		d.Reason = ReasonMaxAgeExceeded
		d.Detail = "age " + formatAge(age) + " exceeds max_age " + formatAge(maxAge)
	case p.WarnBefore > 0 && age >= maxAge-p.WarnBefore:
		d.Action = rotator.ActionWarn
		d.Reason = ReasonMaxAgeApproaching
		d.Detail = "age " + formatAge(age) + ", max_age " + formatAge(maxAge) + " reached in " + formatAge(maxAge-age)
	default:
		d.Reason = ReasonWithinMaxAge
		d.Detail = "age " + formatAge(age) + " within max_age " + formatAge(maxAge) // no fmt: 100,000 keys per plan
	}
	return d
}

// formatAge renders a duration with its two largest units, truncated:
// "91d", "89d12h", "5h30m", "45m", "10s".
func formatAge(d time.Duration) string {
	sign := ""
	if d < 0 {
		sign, d = "-", -d
	}
	const day = 24 * time.Hour
	units := []struct {
		size time.Duration
		name string
	}{{day, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}}
	for i, u := range units {
		if d < u.size && i < len(units)-1 {
			continue
		}
		s := sign + strconv.FormatInt(int64(d/u.size), 10) + u.name
		if i+1 < len(units) {
			next := units[i+1]
			if rest := (d % u.size) / next.size; rest > 0 {
				s += strconv.FormatInt(int64(rest), 10) + next.name
			}
		}
		return s
	}
	return sign + "0s" // unreachable
}

var _ rotator.Policy = MaxAge{}
