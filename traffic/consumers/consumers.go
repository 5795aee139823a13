// Package consumers is the traffic source built on consumer attestations:
// consumers (an application on reload, a sidecar, a Vault Agent or External
// Secrets hook, a deploy script) report which generation of a key they now
// hold through the signed consumer webhook (webhooks/consumer), and this
// source answers the drain gate's "is the old key still used?" with the
// number of consumers, among those heard from within the horizon, that do
// not report the new generation. It needs no server-side telemetry: the
// signal comes from the consumers themselves. It cannot see a consumer that
// never attests; fewer than min_consumers attesting consumers is an error,
// never zero.
package consumers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// maxNamed bounds the consumers a reading names.
const maxNamed = 10

// Source reads the consumers' attestations from the store.
type Source struct {
	store   rotator.ConsumerStore
	horizon time.Duration
	min     int
	log     *slog.Logger
	now     func() time.Time
}

// New checks cfg and builds the source over store.
func New(cfg Config, store rotator.ConsumerStore, logger *slog.Logger) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if store == nil {
		return nil, errors.New("consumers: a store is required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Source{store: store, horizon: cfg.Horizon, min: cfg.MinConsumers, log: logger.With("traffic", "consumers"), now: time.Now}, nil
}

// Unauthorized reports how many consumers heard from within the horizon
// (and since q.NotBefore, when set) do not hold the new generation.
func (s *Source) Unauthorized(ctx context.Context, q rotator.TrafficQuery) (rotator.Reading, error) {
	what := "consumers: key " + q.Key
	if q.Question == rotator.NewKeyFailures {
		return rotator.Reading{}, rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("%s: attestations cannot tell whether the new key fails; pair this source with one that sees 401s", what))
	}
	if q.NewGeneration <= 0 {
		return rotator.Reading{}, rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("%s: no new generation to compare attestations with", what))
	}
	list, err := s.store.Consumers(ctx, q.Key)
	if err != nil {
		return rotator.Reading{}, rotator.WithReason(rotator.ReasonTransient, fmt.Errorf("%s: %w", what, err))
	}
	now := s.now()
	cutoff := now.Add(-s.horizon)
	if q.NotBefore.After(cutoff) {
		cutoff = q.NotBefore
	}
	query := fmt.Sprintf("consumers of %s attesting since %s (horizon %s)", q.Key, cutoff.UTC().Format(time.RFC3339), s.horizon)
	var live int
	var behind, stale []string
	for _, c := range list {
		// Not on the new generation: behind it, or — in a rollback, whose
		// "new" generation is the older one restored — still on the one
		// rolled back from.
		if c.LastSeen.Before(cutoff) {
			if c.Generation != q.NewGeneration {
				stale = append(stale, c.Name)
			}
			continue
		}
		live++
		if c.Generation != q.NewGeneration {
			behind = append(behind, fmt.Sprintf("%s on %s (seen %s ago)", c.Name, rotator.CredentialName(q.Key, c.Generation), now.Sub(c.LastSeen).Round(time.Second)))
		}
	}
	if live < s.min {
		return rotator.Reading{}, rotator.WithReason(rotator.ReasonTransient,
			fmt.Errorf("%s: %d consumer(s) attested within %s, at least %d needed: no attestation is not zero", what, live, s.horizon, s.min))
	}
	detail := fmt.Sprintf("%d of %d consumer(s) attesting within %s hold %s", live-len(behind), live, s.horizon, q.NewName)
	if len(behind) > 0 {
		named := behind
		if len(named) > maxNamed {
			named = append(named[:maxNamed:maxNamed], fmt.Sprintf("and %d more", len(behind)-maxNamed))
		}
		detail += "; still on another generation: " + strings.Join(named, ", ")
	}
	if len(stale) > 0 {
		detail += fmt.Sprintf("; %d not heard from within the horizon are not counted", len(stale))
	}
	return rotator.Reading{Value: float64(len(behind)), At: now, Detail: detail, Query: query}, nil
}

var _ rotator.TrafficSource = (*Source)(nil)

// Horizon is how recent an attestation must be to count.
func (s *Source) Horizon() time.Duration { return s.horizon }
