// Package fixed is the traffic source that observes nothing: it always
// reports zero 401s, so the drain gate simply waits the key's quiet period.
// It is named "fixed" in configuration so that nobody mistakes it for real
// evidence that traffic has drained; use a real source (Prometheus) for
// production keys.
package fixed

import (
	"context"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// Source reports zero.
type Source struct{ now func() time.Time }

// New returns the fixed source.
func New(Config) *Source { return &Source{now: time.Now} }

// Unauthorized always reports a zero rate.
func (s *Source) Unauthorized(context.Context, rotator.TrafficQuery) (rotator.Reading, error) {
	return rotator.Reading{Value: 0, At: s.now(), Detail: "fixed source: no traffic observed, waiting the quiet period only"}, nil
}

var _ rotator.TrafficSource = (*Source)(nil)
