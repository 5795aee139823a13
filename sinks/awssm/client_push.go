package awssm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/rotator/slots"
)

// errStale reports that a label moved between our read and our write: the
// step is redone from a fresh read.
var errStale = errors.New("the secret's labels changed since they were read")

// step runs one sink call: up to maxAttempts rounds of read, ownership
// check and act. need lists the labels whose values act reads (nil: all).
// act returns errStale when another writer got in between.
// A secret the call touched while it was not tagged (adopted, or proven
// ours) is tagged afterwards.
func (s *Sink) step(ctx context.Context, t rotator.Target, op string, need []string, ours func(*state) bool,
	act func(ctx context.Context, r ref, st *state, what string) error,
) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	r, err := s.resolve(t)
	if err != nil {
		return err
	}
	what := fmt.Sprintf("awssm: %s %s", op, r.id)
	for attempt := 1; ; attempt++ {
		st, err := s.read(ctx, r, op, need...)
		if err != nil {
			return err
		}
		if st.exists && !st.managed && !s.cfg.Adopt && (ours == nil || !ours(st)) {
			return s.notManaged(r.id)
		}
		err = act(ctx, r, st, what)
		switch {
		case errors.Is(err, errStale) && attempt < maxAttempts:
			s.logger.DebugContext(ctx, "another writer changed the secret, redoing the step", "op", op, "secret", r.id, "attempt", attempt)
			continue
		case errors.Is(err, errStale):
			return rotator.WithReason(rotator.ReasonConflict, fmt.Errorf("%s: %w after %d attempts: %w", what, errStale, attempt, rotator.ErrConflict))
		case err != nil:
			return err
		}
		if st.exists && !st.managed && op != "remove" {
			return s.tag(ctx, r, what)
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
	return s.step(ctx, t, "stage", []string{stageCurrent, stagePending}, ours, func(ctx context.Context, r ref, st *state, what string) error {
		switch {
		case st.deleted:
			return rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("%s: the secret is scheduled for deletion; restore it first", what))
		case !st.exists && !s.cfg.CreateIfMissing:
			return rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("%s: the secret does not exist and create_if_missing is off: %w", what, rotator.ErrNotFound))
		case !st.exists:
			return s.create(ctx, r, what, d, compose(r, nil, key))
		case st.current == nil:
			// A secret without any value: nothing to keep beside.
			s.beforeWrite()
			_, err := s.put(ctx, r, what, compose(r, nil, key), requestToken("first", d.RotationID, d.Generation, ""), stageCurrent)
			return err
		case st.current.fp == d.Fingerprint:
			return nil
		case st.pending != nil && st.pending.fp == d.Fingerprint && st.pending.sameOthers(st.current):
			return nil
		}
		s.beforeWrite()
		id, err := s.put(ctx, r, what, compose(r, st.current, key), requestToken("stage", d.RotationID, d.Generation, st.current.id), stagePending)
		if err != nil {
			return err
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
			return s.moveCurrent(ctx, r, what, id, st.current.id)
		}
		s.logger.InfoContext(ctx, "staged", "secret", r.id, "generation", d.Generation,
			"fingerprint", rotator.ShortFingerprint(d.Fingerprint), "version", id)
		return nil
	})
}

// Promote moves AWSCURRENT to the pending version d (AWSPREVIOUS follows
// to the old current one) and removes AWSPENDING from it.
func (s *Sink) Promote(ctx context.Context, t rotator.Target, d rotator.Delivery) error {
	return s.step(ctx, t, "promote", []string{stageCurrent, stagePending}, nil, func(ctx context.Context, r ref, st *state, what string) error {
		if st.current != nil && st.current.fp == d.Fingerprint {
			if st.stages[stagePending] == st.current.id { // interrupted after the move
				s.beforeWrite()
				return s.unlabel(ctx, r, what, st, stagePending, st.current.id)
			}
			return nil
		}
		if st.current == nil || st.pending == nil || st.pending.fp != d.Fingerprint {
			return fmt.Errorf("%s: %w", what, slots.NotStaged(d.Fingerprint))
		}
		target := st.pending.id
		if !st.pending.sameOthers(st.current) {
			// Another writer changed the other fields since staging: carry
			// them into a version of our key based on the current one.
			s.beforeWrite()
			id, err := s.put(ctx, r, what, compose(r, st.current, st.pending.value),
				requestToken("stage", d.RotationID, d.Generation, st.current.id), stagePending)
			if err != nil {
				return err
			}
			target = id
		}
		s.beforeWrite()
		if err := s.moveCurrent(ctx, r, what, target, st.current.id); err != nil {
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
	return s.step(ctx, t, "cleanup", []string{stagePending}, nil, func(ctx context.Context, r ref, st *state, what string) error {
		if id, ok := st.stages[stagePrevious]; ok {
			s.beforeWrite()
			if err := s.unlabel(ctx, r, what, st, stagePrevious, id); err != nil {
				return err
			}
		}
		pendingID, hasPending := st.stages[stagePending]
		onCurrent := hasPending && pendingID == st.stages[stageCurrent]
		if hasPending && (onCurrent || (st.pending != nil && st.pending.fp != d.Fingerprint)) {
			s.beforeWrite()
			return s.unlabel(ctx, r, what, st, stagePending, pendingID)
		}
		return nil
	})
}

// Rollback moves AWSCURRENT back to the version with d.OldFingerprint and
// strips every label from the versions holding d.
func (s *Sink) Rollback(ctx context.Context, t rotator.Target, d rotator.Delivery) error {
	var seen *version // the old version, remembered across attempts
	return s.step(ctx, t, "rollback", nil, nil, func(ctx context.Context, r ref, st *state, what string) error {
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
				if target, err = s.put(ctx, r, what, compose(r, st.current, old.value),
					requestToken("rollback", d.RotationID, d.Generation, st.current.id), stagePending); err != nil {
					return err
				}
			}
			s.beforeWrite()
			if err := s.moveCurrent(ctx, r, what, target, st.current.id); err != nil {
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
	return s.step(ctx, t, "remove", nil, nil, func(ctx context.Context, r ref, st *state, what string) error {
		if !st.exists {
			return nil
		}
		if r.format == FormatJSON && st.current != nil && len(st.current.others) > 0 {
			if st.current.fp != "" {
				rest, _ := json.Marshal(st.current.others)
				s.beforeWrite()
				id, err := s.put(ctx, r, what, string(rest), requestToken("remove", "", 0, st.current.id), stagePending)
				if err != nil {
					return err
				}
				if err := s.moveCurrent(ctx, r, what, id, st.current.id); err != nil {
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

// create makes the secret with the key as its first, current value, tagged
// as rekey's. A concurrent creator makes it errStale.
func (s *Sink) create(ctx context.Context, r ref, what string, d rotator.Delivery, value string) error {
	tags := []types.Tag{{Key: aws.String(s.cfg.ManagedTagKey), Value: aws.String(s.cfg.ManagedTagValue)}}
	for k, v := range s.cfg.Tags {
		tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	in := &sm.CreateSecretInput{
		Name:               aws.String(r.id),
		SecretString:       aws.String(value),
		ClientRequestToken: aws.String(requestToken("create", d.RotationID, d.Generation, "")),
		Tags:               tags,
	}
	if s.cfg.KMSKeyID != "" {
		in.KmsKeyId = aws.String(s.cfg.KMSKeyID)
	}
	s.beforeWrite()
	_, err := s.api.CreateSecret(ctx, in)
	if errorCode(err) == "ResourceExistsException" {
		return errStale
	}
	if err != nil {
		return classify(what, err)
	}
	s.logger.InfoContext(ctx, "created", "secret", r.id, "generation", d.Generation, "fingerprint", rotator.ShortFingerprint(d.Fingerprint))
	return nil
}

// put writes a new version (or, for a token already used, finds it) with
// the given label and returns its id.
func (s *Sink) put(ctx context.Context, r ref, what, value, token, label string) (string, error) {
	out, err := s.api.PutSecretValue(ctx, &sm.PutSecretValueInput{
		SecretId:           aws.String(r.id),
		SecretString:       aws.String(value),
		ClientRequestToken: aws.String(token),
		VersionStages:      []string{label},
	})
	if err != nil {
		return "", classify(what, err)
	}
	return aws.ToString(out.VersionId), nil
}

// moveCurrent moves AWSCURRENT from version from to version to — a
// check-and-set, since Secrets Manager refuses the move when from no longer
// holds the label — and removes AWSPENDING from to.
func (s *Sink) moveCurrent(ctx context.Context, r ref, what, to, from string) error {
	_, err := s.api.UpdateSecretVersionStage(ctx, &sm.UpdateSecretVersionStageInput{
		SecretId:            aws.String(r.id),
		VersionStage:        aws.String(stageCurrent),
		MoveToVersionId:     aws.String(to),
		RemoveFromVersionId: aws.String(from),
	})
	if errorCode(err) == "InvalidParameterException" {
		return errStale // AWSCURRENT is no longer on from
	}
	if err != nil {
		return classify(what, err)
	}
	_, err = s.api.UpdateSecretVersionStage(ctx, &sm.UpdateSecretVersionStageInput{
		SecretId: aws.String(r.id), VersionStage: aws.String(stagePending), RemoveFromVersionId: aws.String(to),
	})
	if err != nil && errorCode(err) != "InvalidParameterException" { // already gone is fine
		return classify(what, err)
	}
	return nil
}

// unlabel removes label from version id. If the label is no longer there
// and the labels changed since st was read, the step is redone.
func (s *Sink) unlabel(ctx context.Context, r ref, what string, st *state, label, id string) error {
	_, err := s.api.UpdateSecretVersionStage(ctx, &sm.UpdateSecretVersionStageInput{
		SecretId: aws.String(r.id), VersionStage: aws.String(label), RemoveFromVersionId: aws.String(id),
	})
	if errorCode(err) == "InvalidParameterException" {
		now, derr := s.describe(ctx, r, what)
		if derr == nil && now.labels() != st.labels() {
			return errStale
		}
	}
	if err != nil {
		return classify(what, err)
	}
	return nil
}

// tag marks the secret as rekey's.
func (s *Sink) tag(ctx context.Context, r ref, what string) error {
	_, err := s.api.TagResource(ctx, &sm.TagResourceInput{
		SecretId: aws.String(r.id),
		Tags:     []types.Tag{{Key: aws.String(s.cfg.ManagedTagKey), Value: aws.String(s.cfg.ManagedTagValue)}},
	})
	if err != nil {
		return classify(what+" (tag managed)", err)
	}
	return nil
}
