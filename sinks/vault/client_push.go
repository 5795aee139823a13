package vault

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

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
// pending value other than d. The rotation is over: the state it
// remembered for the secret is dropped.
func (s *Sink) Cleanup(ctx context.Context, t rotator.Target, d rotator.Delivery) error {
	defer s.forget(t)
	return s.update(ctx, t, "cleanup", d, nil, func(sl kv) (kv, bool, error) {
		next, changed := slots.Cleanup(sl, d)
		return next, changed, nil
	})
}

// Replace writes a version whose current value is d.Secret, with no
// pending and no previous value (an emergency: the old key is revoked
// already). One check-and-set write on the state the preflight read.
func (s *Sink) Replace(ctx context.Context, t rotator.Target, d rotator.Delivery) error {
	if err := slots.CheckDelivery(d); err != nil {
		return fmt.Errorf("vault: replace %s: %w", t.Path, err)
	}
	defer s.forget(t)
	ours := func(sl kv) bool { return sl.Current.Fingerprint() == d.Fingerprint }
	return s.update(ctx, t, "replace", d, ours, func(sl kv) (kv, bool, error) {
		next, changed := slots.Replace(sl, value(d.Secret.Reveal()))
		return next, changed, nil
	})
}

// recall returns the state remembered for r's secret, its slots read with
// r's own field names (keys sharing a secret share its versions), or nil.
func (s *Sink) recall(r ref) *state {
	st := s.last.get(r.String(), time.Now())
	if st == nil {
		return nil
	}
	cp := *st
	var err error
	if cp.slots, err = readSlots(cp.data, r.f); err != nil {
		return nil
	}
	return &cp
}

// forget drops what the sink remembers of t's secret.
func (s *Sink) forget(t rotator.Target) {
	if r, err := s.resolve(t); err == nil {
		s.last.forget(r.String())
	}
}

// Rollback writes a version where d.OldFingerprint is current again and d
// is gone.
func (s *Sink) Rollback(ctx context.Context, t rotator.Target, d rotator.Delivery) error {
	return s.update(ctx, t, "rollback", d, nil, func(sl kv) (kv, bool, error) {
		return slots.Rollback(sl, d)
	})
}

// update runs one check-and-set read-modify-write: take the state of the
// secret (the one this process last read or wrote, or a fresh read),
// refuse what rekey does not own, compute the new field values with fn
// and, only if they changed, write a version with cas = the version that
// state names. When the write loses to another writer the whole step is
// redone from a fresh read, a bounded number of times. A step that would
// refuse, or write nothing, on a remembered state reads again before it
// concludes. A secret the step wrote (or adopted) is then marked
// managed-by: rekey in its custom metadata.
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
	key := r.String()
	st := s.recall(r)
	for attempt := 1; ; {
		fresh := st == nil
		if fresh {
			if st, err = s.read(ctx, r, op); err != nil {
				return err
			}
		}
		if st.exists && !st.managed && !s.cfg.Adopt && (ours == nil || !ours(st.slots)) {
			if !fresh {
				st = nil
				continue
			}
			return notManaged(r.String())
		}
		next, changed, err := fn(st.slots)
		if !fresh && (err != nil || !changed) {
			st = nil // confirm a refusal or a replay on what Vault holds now
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if changed {
			s.beforeWrite()
			data := apply(next, st.data, r.f)
			version, err := s.write(ctx, r, what, data, st.version)
			if errors.Is(err, errCAS) {
				s.last.forget(key)
				if attempt < maxAttempts {
					s.logger.DebugContext(ctx, "check-and-set lost to another writer, redoing the step",
						"op", op, "path", r.String(), "version", st.version, "attempt", attempt)
					attempt++
					st = nil
					continue
				}
				return rotator.WithReason(rotator.ReasonConflict,
					fmt.Errorf("%s: check-and-set failed %d times: %w", what, attempt, rotator.ErrConflict))
			}
			if err != nil {
				s.last.forget(key) // the write may have happened
				return err
			}
			s.logger.InfoContext(ctx, op, "key", t.Key, "path", r.String(), "generation", d.Generation,
				"fingerprint", rotator.ShortFingerprint(d.Fingerprint), "version", version)
			if version > 0 {
				s.last.put(key, &state{exists: true, managed: st.managed, version: version, data: data, custom: st.custom, slots: next}, time.Now())
			} else {
				s.last.forget(key)
			}
		}
		if !st.managed && (changed || st.exists) {
			s.last.forget(key)
			return s.mark(ctx, r, what, st.custom)
		}
		return nil
	}
}

// write puts a new version with check-and-set and returns the version
// Vault created (0 when the answer does not say).
func (s *Sink) write(ctx context.Context, r ref, what string, data map[string]any, cas int) (int, error) {
	body := map[string]any{"data": data, "options": map[string]any{"cas": cas}}
	sec, err := s.do(ctx, what, sentValues(data), func() (*api.Secret, error) {
		return s.client.Logical().WriteWithContext(ctx, r.mount+"/data/"+r.path, body)
	})
	if err != nil || sec == nil || sec.Data == nil {
		return 0, err
	}
	return toInt(sec.Data["version"]), nil
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
	defer s.last.forget(r.String())
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
			_, err := s.write(ctx, r, what, rest, st.version)
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
