package awssm

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/rotator/slots"
)

// Replace makes d.Secret the current value of an emergency, whose old key
// is revoked already: a new version put beside AWSCURRENT (AWSPENDING,
// with the deterministic ClientRequestToken) and AWSCURRENT moved onto it
// from the old version (a check-and-set) — two writes on the state the
// preflight described, and no clean-up: AWSPREVIOUS stays on the revoked
// version, as after any Secrets Manager rotation, and AWSPENDING on the new
// current one, until the next staged rotation moves both. (A put without
// VersionStages would make the value current in one write on AWS; moto
// then leaves two versions labelled AWSCURRENT, so rekey does not rely on
// it.)
func (s *Sink) Replace(ctx context.Context, t rotator.Target, d rotator.Delivery) error {
	if err := slots.CheckDelivery(d); err != nil {
		return fmt.Errorf("awssm: replace %s: %w", t.Path, err)
	}
	defer s.last.forget(s.idOf(t))
	key := d.Secret.Reveal()
	ours := func(st *state) bool { return st.current != nil && st.current.fp == d.Fingerprint }
	return s.step(ctx, t, "replace", []string{stageCurrent}, ours, true, func(ctx context.Context, r ref, st *state, what string) error {
		if done, err := s.first(ctx, r, st, what, d, key); done || err != nil {
			return err
		}
		if st.current.fp == d.Fingerprint {
			return errNothing
		}
		s.beforeWrite()
		id, err := s.put(ctx, r, st, what, compose(r, st.current, key), requestToken("replace", d.RotationID, d.Generation, st.current.id), stagePending)
		if err != nil {
			return err
		}
		s.beforeWrite()
		if err := s.moveCurrent(ctx, r, st, what, id, st.current.id, false); err != nil {
			return err
		}
		s.logger.InfoContext(ctx, "replaced", "secret", r.id, "generation", d.Generation,
			"fingerprint", rotator.ShortFingerprint(d.Fingerprint), "version", id)
		return nil
	})
}

// first delivers key to a secret that has no value yet (creating it when
// it does not exist and create_if_missing allows), and refuses a secret
// scheduled for deletion. It reports whether it handled the call.
func (s *Sink) first(ctx context.Context, r ref, st *state, what string, d rotator.Delivery, key string) (bool, error) {
	switch {
	case st.deleted:
		return true, rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("%s: the secret is scheduled for deletion; restore it first", what))
	case !st.exists && !s.cfg.CreateIfMissing:
		return true, rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("%s: the secret does not exist and create_if_missing is off: %w", what, rotator.ErrNotFound))
	case !st.exists:
		st.stale = true
		return true, s.create(ctx, r, what, d, compose(r, nil, key))
	case st.current == nil:
		// A secret without any value: nothing to keep beside.
		s.beforeWrite()
		_, err := s.put(ctx, r, st, what, compose(r, nil, key), requestToken("first", d.RotationID, d.Generation, ""), stageCurrent)
		return true, err
	}
	return false, nil
}

// idOf is the key of t in the sink's memories.
func (s *Sink) idOf(t rotator.Target) string {
	r, _ := s.resolve(t)
	return r.memo()
}

// memo keys what the sink remembers of r: the secret, and how the key is
// read from its versions (keys sharing a secret read different fields).
func (r ref) memo() string { return r.id + "\x00" + r.format + "\x00" + r.field }

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
	s.fps.put(r.memo(), aws.ToString(in.ClientRequestToken), d.Fingerprint) // the first version's id is the token
	s.logger.InfoContext(ctx, "created", "secret", r.id, "generation", d.Generation, "fingerprint", rotator.ShortFingerprint(d.Fingerprint))
	return nil
}

// put writes a new version (or, for a token already used, finds it) with
// the given label and returns its id. The version is recorded in st, and
// its fingerprint is known from now on without reading it back.
func (s *Sink) put(ctx context.Context, r ref, st *state, what, value, token, label string) (string, error) {
	out, err := s.api.PutSecretValue(ctx, &sm.PutSecretValueInput{
		SecretId:           aws.String(r.id),
		SecretString:       aws.String(value),
		ClientRequestToken: aws.String(token),
		VersionStages:      []string{label},
	})
	if err != nil {
		return "", classify(what, err)
	}
	id := aws.ToString(out.VersionId)
	v, perr := parse(r, id, &sm.GetSecretValueOutput{SecretString: aws.String(value)})
	if perr != nil || id == "" || label == stageCurrent {
		st.stale = true // what else moved is not followed here
		return id, nil
	}
	s.fps.put(r.memo(), id, v.fp)
	st.label(label, v)
	return id, nil
}

// moveCurrent moves AWSCURRENT from version from to version to — a
// check-and-set, since Secrets Manager refuses the move when from no longer
// holds the label — and, with dropPending, removes AWSPENDING from to.
// AWSPREVIOUS follows to from on its own.
func (s *Sink) moveCurrent(ctx context.Context, r ref, st *state, what, to, from string, dropPending bool) error {
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
	if st.versions[to] == nil || st.versions[from] == nil {
		st.stale = true
	} else {
		st.label(stageCurrent, st.versions[to])
		st.label(stagePrevious, st.versions[from])
	}
	if !dropPending {
		return nil
	}
	_, err = s.api.UpdateSecretVersionStage(ctx, &sm.UpdateSecretVersionStageInput{
		SecretId: aws.String(r.id), VersionStage: aws.String(stagePending), RemoveFromVersionId: aws.String(to),
	})
	if err != nil && errorCode(err) != "InvalidParameterException" { // already gone is fine
		return classify(what, err)
	}
	if st.stages[stagePending] == to {
		st.label(stagePending, nil)
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
	if st.stages[label] == id {
		st.label(label, nil)
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
