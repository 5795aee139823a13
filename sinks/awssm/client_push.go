package awssm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/rotator/slots"
)

// errStale reports that a label moved between our read and our write: the
// step is redone from a fresh read.
var errStale = errors.New("the secret's labels changed since they were read")

// step runs one sink call: up to maxAttempts rounds of read, ownership
// check and act. need lists the labels whose values act reads (nil: all).
// act returns errStale when another writer got in between, errNothing when
// it found its work done. With remember, the call starts from the state
// this process last read or wrote for the secret (lastState) and leaves
// the state it made there; a refusal or a replay on that remembered state
// is confirmed on a fresh read. A secret the call touched while it was not
// tagged (adopted, or proven ours) is tagged afterwards.
func (s *Sink) step(ctx context.Context, t rotator.Target, op string, need []string, ours func(*state) bool, remember bool,
	act func(ctx context.Context, r ref, st *state, what string) error,
) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	r, err := s.resolve(t)
	if err != nil {
		return err
	}
	what := fmt.Sprintf("awssm: %s %s", op, r.id)
	var st *state
	if remember {
		st = s.last.get(r.memo(), time.Now())
	}
	for attempt := 1; ; {
		fresh := st == nil
		if fresh {
			if st, err = s.read(ctx, r, op, need...); err != nil {
				return err
			}
		}
		if st.exists && !st.managed && !s.cfg.Adopt && (ours == nil || !ours(st)) {
			if !fresh {
				st = nil
				continue
			}
			return s.notManaged(r.id)
		}
		err = act(ctx, r, st, what)
		switch {
		case errors.Is(err, errNothing) && !fresh, err != nil && !fresh && rotator.IsPermanent(err):
			s.last.forget(r.memo())
			st = nil // confirm a replay or a refusal on what the secret holds now
			continue
		case errors.Is(err, errNothing):
			err = nil
		case errors.Is(err, errStale) && attempt < maxAttempts:
			s.last.forget(r.memo())
			s.logger.DebugContext(ctx, "another writer changed the secret, redoing the step", "op", op, "secret", r.id, "attempt", attempt)
			attempt++
			st = nil
			continue
		case errors.Is(err, errStale):
			s.last.forget(r.memo())
			return rotator.WithReason(rotator.ReasonConflict, fmt.Errorf("%s: %w after %d attempts: %w", what, errStale, attempt, rotator.ErrConflict))
		case err != nil:
			s.last.forget(r.memo())
			return err
		}
		if st.exists && !st.managed && op != "remove" {
			s.last.forget(r.memo())
			return s.tag(ctx, r, what)
		}
		if remember && st.exists && !st.stale {
			s.last.put(r.memo(), st, time.Now())
		} else {
			s.last.forget(r.memo())
		}
		return nil
	}
}

// Stage puts d.Secret as a new AWSPENDING version beside AWSCURRENT, or
// creates the secret with it as AWSCURRENT (first delivery).
func (s *Sink) Stage(ctx context.Context, t rotator.Target, d rotator.Delivery) error {
	if err := slots.CheckDelivery(d); err != nil {
		return fmt.Errorf("awssm: stage %s: %w", t.Path, err)
	}
	key := d.Secret.Reveal()
	ours := func(st *state) bool { return st.current != nil && st.current.fp == d.Fingerprint }
	return s.step(ctx, t, "stage", []string{stageCurrent, stagePending}, ours, true, func(ctx context.Context, r ref, st *state, what string) error {
		if done, err := s.first(ctx, r, st, what, d, key); done || err != nil {
			return err
		}
		switch {
		case st.current.fp == d.Fingerprint:
			return errNothing
		case st.pending != nil && st.pending.fp == d.Fingerprint && st.pending.sameOthers(st.current):
			return errNothing
		}
		s.beforeWrite()
		id, err := s.put(ctx, r, st, what, compose(r, st.current, key), requestToken("stage", d.RotationID, d.Generation, st.current.id), stagePending)
		if err != nil {
			return err
		}
		if r.format == FormatString {
			// The new version holds nothing but the key: it does not
			// depend on which version is current.
			s.logger.InfoContext(ctx, "staged", "secret", r.id, "generation", d.Generation,
				"fingerprint", rotator.ShortFingerprint(d.Fingerprint), "version", id)
			return nil
		}
		// The new version copies the current one's other fields: it is only
		// right if that version is still current.
		now, err := s.describe(ctx, r, what)
		if err != nil {
			return err
		}
		if now.stages[stageCurrent] != st.current.id {
			return errStale
		}
		if st.current.fp == "" {
			// A JSON secret without our field: the key goes straight to current.
			return s.moveCurrent(ctx, r, st, what, id, st.current.id, true)
		}
		s.logger.InfoContext(ctx, "staged", "secret", r.id, "generation", d.Generation,
			"fingerprint", rotator.ShortFingerprint(d.Fingerprint), "version", id)
		return nil
	})
}

// Promote moves AWSCURRENT to the pending version d (AWSPREVIOUS follows
// to the old current one) and removes AWSPENDING from it.
func (s *Sink) Promote(ctx context.Context, t rotator.Target, d rotator.Delivery) error {
	return s.step(ctx, t, "promote", []string{stageCurrent, stagePending}, nil, true, func(ctx context.Context, r ref, st *state, what string) error {
		if st.current != nil && st.current.fp == d.Fingerprint {
			if st.stages[stagePending] == st.current.id { // interrupted after the move
				s.beforeWrite()
				return s.unlabel(ctx, r, what, st, stagePending, st.current.id)
			}
			return errNothing
		}
		if st.current == nil || st.pending == nil || st.pending.fp != d.Fingerprint {
			return fmt.Errorf("%s: %w", what, slots.NotStaged(d.Fingerprint))
		}
		target := st.pending.id
		if !st.pending.sameOthers(st.current) {
			// Another writer changed the other fields since staging: carry
			// them into a version of our key based on the current one.
			s.beforeWrite()
			id, err := s.put(ctx, r, st, what, compose(r, st.current, st.pending.value),
				requestToken("stage", d.RotationID, d.Generation, st.current.id), stagePending)
			if err != nil {
				return err
			}
			target = id
		}
		s.beforeWrite()
		if err := s.moveCurrent(ctx, r, st, what, target, st.current.id, true); err != nil {
			return err
		}
		s.logger.InfoContext(ctx, "promoted", "secret", r.id, "generation", d.Generation,
			"fingerprint", rotator.ShortFingerprint(d.Fingerprint), "version", target)
		return nil
	})
}

// Cleanup removes AWSPREVIOUS and any AWSPENDING label not on d. The
// unlabelled versions become deprecated; Secrets Manager deletes them.
func (s *Sink) Cleanup(ctx context.Context, t rotator.Target, d rotator.Delivery) error {
	defer s.last.forget(s.idOf(t)) // the rotation is over
	return s.step(ctx, t, "cleanup", []string{stagePending}, nil, true, func(ctx context.Context, r ref, st *state, what string) error {
		wrote := false
		if id, ok := st.stages[stagePrevious]; ok {
			s.beforeWrite()
			if err := s.unlabel(ctx, r, what, st, stagePrevious, id); err != nil {
				return err
			}
			wrote = true
		}
		pendingID, hasPending := st.stages[stagePending]
		onCurrent := hasPending && pendingID == st.stages[stageCurrent]
		if hasPending && (onCurrent || (st.pending != nil && st.pending.fp != d.Fingerprint)) {
			s.beforeWrite()
			return s.unlabel(ctx, r, what, st, stagePending, pendingID)
		}
		if !wrote {
			return errNothing
		}
		return nil
	})
}

// Rollback moves AWSCURRENT back to the version with d.OldFingerprint and
// strips every label from the versions holding d.
func (s *Sink) Rollback(ctx context.Context, t rotator.Target, d rotator.Delivery) error {
	var seen *version // the old version, remembered across attempts
	return s.step(ctx, t, "rollback", nil, nil, false, func(ctx context.Context, r ref, st *state, what string) error {
		if st.current != nil && st.current.fp == d.Fingerprint && d.Fingerprint != d.OldFingerprint {
			if d.OldFingerprint == "" {
				return fmt.Errorf("%s: %w", what, slots.OnlyCurrent())
			}
			old := findVersion(st, d.OldFingerprint, seen)
			if old == nil {
				return fmt.Errorf("%s: %w", what, slots.OldGone(d.OldFingerprint))
			}
			seen = old
			target, err := old.id, error(nil)
			if !old.sameOthers(st.current) {
				s.beforeWrite()
				if target, err = s.put(ctx, r, st, what, compose(r, st.current, old.value),
					requestToken("rollback", d.RotationID, d.Generation, st.current.id), stagePending); err != nil {
					return err
				}
			}
			s.beforeWrite()
			if err := s.moveCurrent(ctx, r, st, what, target, st.current.id, true); err != nil {
				return err
			}
			s.logger.InfoContext(ctx, "rolled back", "secret", r.id, "generation", d.Generation,
				"restored_fingerprint", rotator.ShortFingerprint(d.OldFingerprint), "version", target)
			if st, err = s.read(ctx, r, "rollback"); err != nil {
				return err
			}
		}
		for label, v := range map[string]*version{stagePending: st.pending, stagePrevious: st.prev} {
			if v != nil && v.fp == d.Fingerprint {
				s.beforeWrite()
				if err := s.unlabel(ctx, r, what, st, label, v.id); err != nil {
					return err
				}
			}
		}
		if id, ok := st.stages[stagePending]; ok && st.current != nil && id == st.current.id {
			s.beforeWrite()
			return s.unlabel(ctx, r, what, st, stagePending, id)
		}
		return nil
	})
}

// Remove deletes the key (decommission): the whole secret, or in JSON
// format with other fields, a new current version without our field.
func (s *Sink) Remove(ctx context.Context, t rotator.Target) error {
	defer s.fps.forget(s.idOf(t))
	return s.step(ctx, t, "remove", nil, nil, false, func(ctx context.Context, r ref, st *state, what string) error {
		if !st.exists {
			return nil
		}
		if r.format == FormatJSON && st.current != nil && len(st.current.others) > 0 {
			if st.current.fp != "" {
				rest, _ := json.Marshal(st.current.others)
				s.beforeWrite()
				id, err := s.put(ctx, r, st, what, string(rest), requestToken("remove", "", 0, st.current.id), stagePending)
				if err != nil {
					return err
				}
				if err := s.moveCurrent(ctx, r, st, what, id, st.current.id, true); err != nil {
					return err
				}
				if st, err = s.read(ctx, r, "remove"); err != nil {
					return err
				}
			}
			if st.prev != nil {
				return s.unlabel(ctx, r, what, st, stagePrevious, st.prev.id)
			}
			return nil
		}
		in := &sm.DeleteSecretInput{SecretId: aws.String(r.id)}
		if s.cfg.RecoveryWindowDays == 0 {
			in.ForceDeleteWithoutRecovery = aws.Bool(true)
		} else {
			in.RecoveryWindowInDays = aws.Int64(int64(s.cfg.RecoveryWindowDays))
		}
		s.beforeWrite()
		if _, err := s.api.DeleteSecret(ctx, in); err != nil {
			return classify(what, err)
		}
		s.logger.InfoContext(ctx, "removed", "secret", r.id, "recovery_window_days", s.cfg.RecoveryWindowDays)
		return nil
	})
}
