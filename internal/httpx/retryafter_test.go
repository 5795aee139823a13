package httpx

import (
	"errors"
	"net/http"
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	tests := map[string]struct {
		header string
		want   time.Duration
	}{
		"absent":      {header: "", want: 0},
		"seconds":     {header: "120", want: 2 * time.Minute},
		"spaces":      {header: " 30 ", want: 30 * time.Second},
		"zero":        {header: "0", want: 0},
		"negative":    {header: "-5", want: 0},
		"huge":        {header: "99999999999", want: MaxRetryAfter},
		"overflowing": {header: "99999999999999999999", want: 0},
		"http date":   {header: now.Add(90 * time.Second).Format(http.TimeFormat), want: 90 * time.Second},
		"far date":    {header: now.Add(1000 * time.Hour).Format(http.TimeFormat), want: MaxRetryAfter},
		"past date":   {header: now.Add(-time.Minute).Format(http.TimeFormat), want: 0},
		"unparseable": {header: "soon", want: 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := http.Header{}
			if tc.header != "" {
				h.Set("Retry-After", tc.header)
			}
			if got := RetryAfter(h, now); got != tc.want {
				t.Fatalf("RetryAfter(%q) = %v, want %v", tc.header, got, tc.want)
			}
		})
	}
}

func TestWithRetryAfter(t *testing.T) {
	base := errors.New("webhook: POST https://h: HTTP 429")
	err := WithRetryAfter(base, 7*time.Second)
	var ra interface{ RetryAfter() time.Duration }
	if !errors.As(err, &ra) || ra.RetryAfter() != 7*time.Second {
		t.Fatalf("errors.As RetryAfter on %v", err)
	}
	if !errors.Is(err, base) {
		t.Fatal("does not unwrap to the classified error")
	}
	if got, want := err.Error(), "webhook: POST https://h: HTTP 429 (retry after 7s)"; got != want {
		t.Fatalf("text %q, want %q", got, want)
	}
	if WithRetryAfter(base, 0) != base || WithRetryAfter(nil, time.Second) != nil {
		t.Fatal("zero delay or nil error must pass through")
	}
}
