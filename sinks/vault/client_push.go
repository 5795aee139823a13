package vault

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/hashicorp/vault/api"

	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/rotator/slots"
)

// Stage writes d.Secret into the pending field beside the current one, or
// into the current field when the secret has none (first delivery).
func (s *Sink) Stage(ctx context.Context, t rotator.Target, d rotator.Delivery) error {
	if err := slots.CheckDelivery(d); err != nil {
		return fmt.Errorf("vault: stage %s: %w", t.Path, err)
	}
	// An unmarked secret whose current value is this very secret is our
	// own first delivery, interrupted before it could be marked: only
	// rekey knows the value.
	ours := func(sl kv) bool { return sl.Current.Fingerprint() == d.Fingerprint }
	return s.update(ctx, t, "stage", d, ours, func(sl kv) (kv, bool, error) {
		next, changed := slots.Stage(sl, value(d.Secret.Reveal()))
		return next, changed, nil
	})
}

// Promote writes a version with current = the pending value d and
// previous = the old current value.
func (s *Sink) Promote(ctx context.Context, t rotator.Target, d rotator.Delivery) error {
	return s.update(ctx, t, "promote", d, nil, func(sl kv) (kv, bool, error) {
		return slots.Promote(sl, d)
	})
}

// Cleanup writes a version without the previous value and without a
// pending value other than d.
func (s *Sink) Cleanup(ctx context.Context, t rotator.Target, d rotator.Delivery) error {
	return s.update(ctx, t, "cleanup", d, nil, func(sl kv) (kv, bool, error) {
		next, changed := slots.Cleanup(sl, d)
		return next, changed, nil
	})
}

// Rollback writes a version where d.OldFingerprint is current again and d
// is gone.
func (s *Sink) Rollback(ctx context.Context, t rotator.Target, d rotator.Delivery) error {
	return s.update(ctx, t, "rollback", d, nil, func(sl kv) (kv, bool, error) {
		return slots.Rollback(sl, d)
	})
}

// update runs one check-and-set read-modify-write: read the latest version,
// refuse what rekey does not own, compute the new field values with fn and,
// only if they changed, write a version with cas = the version read. When
// the write loses to another writer the whole step is redone from a fresh
// read, a bounded number of times. A secret the step wrote (or adopted) is
// then marked managed-by: rekey in its custom metadata.
func (s *Sink) update(ctx context.Context, t rotator.Target, op string, d rotator.Delivery,
	ours func(kv) bool, fn func(kv) (kv, bool, error),
) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	r, err := s.resolve(t)
	if err != nil {
		return err
	}
	what := fmt.Sprintf("vault: %s %s", op, r)
	for attempt := 1; ; attempt++ {
		st, err := s.read(ctx, r, op)
		if err != nil {
			return err
		}
		if st.exists && !st.managed && !s.cfg.Adopt && (ours == nil || !ours(st.slots)) {
			return notManaged(r.String())
		}
		next, changed, err := fn(st.slots)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if changed {
			s.beforeWrite()
			err := s.write(ctx, r, what, apply(next, st.data, r.f), st.version)
			if errors.Is(err, errCAS) {
				if attempt < maxAttempts {
					s.logger.DebugContext(ctx, "check-and-set lost to another writer, redoing the step",
						"op", op, "path", r.String(), "version", st.version, "attempt", attempt)
					continue
				}
				return rotator.WithReason(rotator.ReasonConflict,
					fmt.Errorf("%s: check-and-set failed %d times: %w", what, attempt, rotator.ErrConflict))
			}
			if err != nil {
				return err
			}
			s.logger.InfoContext(ctx, op, "key", t.Key, "path", r.String(), "generation", d.Generation,
				"fingerprint", rotator.ShortFingerprint(d.Fingerprint), "version", st.version+1)
		}
		if !st.managed && (changed || st.exists) {
			return s.mark(ctx, r, what, st.custom)
		}
		return nil
	}
}

// write puts a new version with check-and-set.
func (s *Sink) write(ctx context.Context, r ref, what string, data map[string]any, cas int) error {
	body := map[string]any{"data": data, "options": map[string]any{"cas": cas}}
	_, err := s.do(ctx, what, sentValues(data), func() (*api.Secret, error) {
		return s.client.Logical().WriteWithContext(ctx, r.mount+"/data/"+r.path, body)
	})
	return err
}

// mark adds managed-by: rekey to the secret's custom metadata, keeping the
// other keys (a metadata write replaces the whole map; other settings such
// as max_versions are left alone).
func (s *Sink) mark(ctx context.Context, r ref, what string, custom map[string]any) error {
	merged := maps.Clone(custom)
	if merged == nil {
		merged = map[string]any{}
	}
	merged[markerKey] = markerValue
	_, err := s.do(ctx, what+" (mark managed)", nil, func() (*api.Secret, error) {
		return s.client.Logical().WriteWithContext(ctx, r.mount+"/metadata/"+r.path, map[string]any{"custom_metadata": merged})
	})
	return err
}

// Remove deletes the key (decommission): its fields are removed from the
// secret and, when nothing else remains, the secret with all its versions
// and metadata.
func (s *Sink) Remove(ctx context.Context, t rotator.Target) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	r, err := s.resolve(t)
	if err != nil {
		return err
	}
	what := fmt.Sprintf("vault: remove %s", r)
	for attempt := 1; ; attempt++ {
		st, err := s.read(ctx, r, "remove")
		if err != nil || !st.exists {
			return err
		}
		if !st.managed && !s.cfg.Adopt {
			return notManaged(r.String())
		}
		rest := apply(kv{}, st.data, r.f)
		if len(rest) > 0 {
			if st.slots == (kv{}) {
				return nil
			}
			s.beforeWrite()
			err := s.write(ctx, r, what, rest, st.version)
			switch {
			case errors.Is(err, errCAS) && attempt < maxAttempts:
				continue
			case errors.Is(err, errCAS):
				return rotator.WithReason(rotator.ReasonConflict,
					fmt.Errorf("%s: check-and-set failed %d times: %w", what, attempt, rotator.ErrConflict))
			}
			return err
		}
		s.beforeWrite()
		_, err = s.do(ctx, what, nil, func() (*api.Secret, error) {
			return s.client.Logical().DeleteWithContext(ctx, r.mount+"/metadata/"+r.path)
		})
		if err == nil {
			s.logger.InfoContext(ctx, "removed", "key", t.Key, "path", r.String())
		}
		return err
	}
}

// sentValues lists the string values of a request body, which no error
// text may repeat.
func sentValues(data map[string]any) []string {
	var out []string
	for _, v := range data {
		if s, ok := v.(string); ok && s != "" {
			out = append(out, s)
		}
	}
	return out
}
