package policies

import (
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

const day = 24 * time.Hour

func TestMaxAgeEvaluate(t *testing.T) {
	created := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	std := MaxAge{MaxAge: 90 * day, WarnBefore: 14 * day}
	due := created.Add(90 * day)
	tests := map[string]struct {
		policy      MaxAge
		current     *rotator.Credential
		now         time.Time
		wantAction  rotator.Action
		wantReason  string
		wantTrigger rotator.Trigger
		wantDue     time.Time
		wantDetail  string
	}{
		"no credential": {
			policy: std, now: created,
			wantAction: rotator.ActionNone, wantReason: ReasonNoCredential,
		},
		"no creation time": {
			policy: std, current: &rotator.Credential{Generation: 3}, now: created,
			wantAction: rotator.ActionWarn, wantReason: ReasonUnknownAge, wantDetail: "generation 3",
		},
		"fresh": {
			policy: std, now: created,
			wantAction: rotator.ActionNone, wantReason: ReasonWithinMaxAge, wantDue: due, wantDetail: "age 0s within max_age 90d",
		},
		"just before the warn point": {
			policy: std, now: created.Add(76*day - time.Nanosecond),
			wantAction: rotator.ActionNone, wantReason: ReasonWithinMaxAge, wantDue: due,
		},
		"exactly at the warn point": {
			policy: std, now: created.Add(76 * day),
			wantAction: rotator.ActionWarn, wantReason: ReasonMaxAgeApproaching, wantDue: due,
			wantDetail: "age 76d, max_age 90d reached in 14d",
		},
		"just before max_age": {
			policy: std, now: due.Add(-time.Nanosecond),
			wantAction: rotator.ActionWarn, wantReason: ReasonMaxAgeApproaching, wantDue: due,
		},
		"exactly at max_age": {
			policy: std, now: due,
			wantAction: rotator.ActionRotate, wantReason: ReasonMaxAgeExceeded, wantTrigger: rotator.TriggerAge, wantDue: due,
			wantDetail: "age 90d exceeds max_age 90d",
		},
		"past max_age": {
			policy: std, now: created.Add(91*day + 6*time.Hour),
			wantAction: rotator.ActionRotate, wantReason: ReasonMaxAgeExceeded, wantTrigger: rotator.TriggerAge, wantDue: due,
			wantDetail: "age 91d6h exceeds max_age 90d",
		},
		"no warning configured": {
			policy: MaxAge{MaxAge: 90 * day}, now: due.Add(-time.Second),
			wantAction: rotator.ActionNone, wantReason: ReasonWithinMaxAge, wantDue: due,
		},
		"zero max_age means the default": {
			policy: MaxAge{}, now: created.Add(DefaultMaxAge),
			wantAction: rotator.ActionRotate, wantReason: ReasonMaxAgeExceeded, wantTrigger: rotator.TriggerAge,
			wantDue: created.Add(DefaultMaxAge),
		},
		"created in the future (clock skew)": {
			policy: std, now: created.Add(-time.Hour),
			wantAction: rotator.ActionNone, wantReason: ReasonWithinMaxAge, wantDue: due, wantDetail: "age -1h",
		},
		"short max_age": {
			policy: MaxAge{MaxAge: 36 * time.Hour, WarnBefore: 6 * time.Hour}, now: created.Add(31 * time.Hour),
			wantAction: rotator.ActionWarn, wantReason: ReasonMaxAgeApproaching, wantDue: created.Add(36 * time.Hour),
			wantDetail: "age 1d7h, max_age 1d12h reached in 5h",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cur := tc.current
			if cur == nil && tc.wantReason != ReasonNoCredential {
				cur = &rotator.Credential{Key: "k", Generation: 1, CreatedAt: created, State: rotator.CredCurrent}
			}
			in := rotator.PolicyInput{Key: &rotator.Key{Name: "k"}, Now: tc.now, Current: cur}
			got := tc.policy.Evaluate(in)
			if got.Action != tc.wantAction || got.Reason != tc.wantReason || got.Trigger != tc.wantTrigger {
				t.Fatalf("got %s/%s/%q, want %s/%s/%q (%s)", got.Action, got.Reason, got.Trigger,
					tc.wantAction, tc.wantReason, tc.wantTrigger, got.Detail)
			}
			if !got.Due.Equal(tc.wantDue) {
				t.Fatalf("due %v, want %v", got.Due, tc.wantDue)
			}
			if got.Policy != "maxage" {
				t.Fatalf("policy %q", got.Policy)
			}
			if !strings.Contains(got.Detail, tc.wantDetail) {
				t.Fatalf("detail %q lacks %q", got.Detail, tc.wantDetail)
			}
		})
	}
}

// TestMaxAgeInChain checks that rotator.Evaluate keeps the maxage due date
// when nothing else fires, and that a Warn yields to another policy's Rotate.
func TestMaxAgeInChain(t *testing.T) {
	created := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	cur := &rotator.Credential{Generation: 1, CreatedAt: created}
	p := DefaultMaxAgePolicy()
	d := rotator.Evaluate([]rotator.Policy{p}, rotator.PolicyInput{Now: created.Add(day), Current: cur})
	if d.Action != rotator.ActionNone || !d.Due.Equal(created.Add(DefaultMaxAge)) || d.Policy != MaxAgeName {
		t.Fatalf("decision %+v", d)
	}
	p.WarnBefore = 14 * day
	warnIn := rotator.PolicyInput{Now: created.Add(85 * day), Current: cur}
	if d = p.Evaluate(warnIn); d.Action != rotator.ActionWarn {
		t.Fatalf("alone: decision %+v, want a warning", d)
	}
	rotate := fixed{rotator.Decision{Action: rotator.ActionRotate, Reason: "other"}}
	d = rotator.Evaluate([]rotator.Policy{p, rotate}, warnIn)
	if d.Action != rotator.ActionRotate || d.Reason != "other" {
		t.Fatalf("decision %+v", d)
	}
}

type fixed struct{ d rotator.Decision }

func (f fixed) Name() string                                  { return "fixed" }
func (f fixed) Evaluate(rotator.PolicyInput) rotator.Decision { return f.d }

func TestMaxAgeValidate(t *testing.T) {
	tests := map[string]struct {
		policy  MaxAge
		wantErr string
	}{
		"defaults":             {policy: DefaultMaxAgePolicy()},
		"no warning":           {policy: MaxAge{MaxAge: day}},
		"zero max_age":         {policy: MaxAge{}},
		"negative max_age":     {policy: MaxAge{MaxAge: -day}, wantErr: "max_age: must not be negative"},
		"warn past default":    {policy: MaxAge{WarnBefore: 90 * day}, wantErr: "shorter than max_age (90d)"},
		"negative warn":        {policy: MaxAge{MaxAge: day, WarnBefore: -time.Hour}, wantErr: "warn_before: must not be negative"},
		"warn as long as max":  {policy: MaxAge{MaxAge: day, WarnBefore: day}, wantErr: "warn_before: must be shorter than max_age (1d)"},
		"warn longer than max": {policy: MaxAge{MaxAge: day, WarnBefore: 2 * day}, wantErr: "warn_before:"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.policy.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestFormatAge(t *testing.T) {
	tests := map[string]struct {
		d    time.Duration
		want string
	}{
		"zero":         {d: 0, want: "0s"},
		"seconds":      {d: 10*time.Second + 300*time.Millisecond, want: "10s"},
		"minutes":      {d: 45*time.Minute + 10*time.Second, want: "45m10s"},
		"hours":        {d: 5*time.Hour + 30*time.Minute + 5*time.Second, want: "5h30m"},
		"whole days":   {d: 91 * day, want: "91d"},
		"days + hours": {d: 89*day + 12*time.Hour + 59*time.Minute, want: "89d12h"},
		"negative":     {d: -time.Hour, want: "-1h"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := formatAge(tc.d); got != tc.want {
				t.Fatalf("formatAge(%v) = %q, want %q", tc.d, got, tc.want)
			}
		})
	}
}
