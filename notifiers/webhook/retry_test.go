package webhook

import (
	"net/http"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	tests := map[string]struct {
		header string
		want   time.Duration
	}{
		"empty":       {header: "", want: 0},
		"seconds":     {header: "1", want: time.Second},
		"spaces":      {header: " 30 ", want: 30 * time.Second},
		"zero":        {header: "0", want: 0},
		"negative":    {header: "-5", want: 0},
		"huge":        {header: "99999999999", want: 24 * time.Hour},
		"http date":   {header: now.Add(90 * time.Second).Format(http.TimeFormat), want: 90 * time.Second},
		"past date":   {header: now.Add(-time.Minute).Format(http.TimeFormat), want: 0},
		"unparseable": {header: "soon", want: 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := parseRetryAfter(tc.header, now); got != tc.want {
				t.Fatalf("parseRetryAfter(%q) = %v, want %v", tc.header, got, tc.want)
			}
		})
	}
}

func TestJitteredBackoff(t *testing.T) {
	backoff := jitteredBackoff(time.Second, 30*time.Second)
	tests := map[string]struct {
		failures int
		ceiling  time.Duration
	}{
		"first":   {failures: 1, ceiling: time.Second},
		"second":  {failures: 2, ceiling: 2 * time.Second},
		"fourth":  {failures: 4, ceiling: 8 * time.Second},
		"capped":  {failures: 6, ceiling: 30 * time.Second},
		"far out": {failures: 200, ceiling: 30 * time.Second},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for range 100 {
				d := backoff(tc.failures)
				if d < tc.ceiling/2 || d > tc.ceiling {
					t.Fatalf("backoff(%d) = %v, want within [%v, %v]", tc.failures, d, tc.ceiling/2, tc.ceiling)
				}
			}
		})
	}
}
