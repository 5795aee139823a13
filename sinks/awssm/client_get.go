package awssm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rekeyhq/rekey/rotator"
)

// version is one labelled version of the secret, parsed.
type version struct {
	id     string
	value  string                     // the key: the whole string, or the JSON field
	fp     string                     // its fingerprint, "" when absent
	others map[string]json.RawMessage // JSON format: the fields rekey does not own
}

// sameOthers reports whether two versions agree on everything but the key.
func (v *version) sameOthers(o *version) bool {
	a, _ := json.Marshal(v.others)
	b, _ := json.Marshal(o.others)
	return string(a) == string(b)
}

// state is what one read found.
type state struct {
	exists  bool // described and not scheduled for deletion
	deleted bool // scheduled for deletion
	managed bool
	stages  map[string]string // label → version id
	current *version          // AWSCURRENT; nil when the secret has no value
	pending *version          // AWSPENDING on a version other than the current one
	prev    *version          // AWSPREVIOUS
	// versions are the labelled versions read (or written) so far, by id.
	versions map[string]*version
	// stale: a step changed the secret in a way the labels above do not
	// follow (created it, tagged it); it is not remembered.
	stale bool
}

// relink points current, pending and previous at the versions their
// labels name.
func (st *state) relink() {
	by := func(label string) *version {
		if id, ok := st.stages[label]; ok {
			return st.versions[id]
		}
		return nil
	}
	st.current, st.pending, st.prev = by(stageCurrent), by(stagePending), by(stagePrevious)
	if st.pending != nil && st.pending.id == st.stages[stageCurrent] {
		st.pending = nil // a label left on the current version is no pending value
	}
}

// label records that label now names version v (put or moved by this
// step), and removed, the labels that left a version.
func (st *state) label(label string, v *version) {
	if st.versions == nil {
		st.versions = map[string]*version{}
	}
	if v != nil {
		st.versions[v.id] = v
		st.stages[label] = v.id
	} else {
		delete(st.stages, label)
	}
	st.relink()
}

// labels returns a comparable summary of the labels.
func (st *state) labels() string {
	b, _ := json.Marshal(st.stages)
	return string(b)
}

// describe reads the secret's metadata: tags and which version holds which
// label.
func (s *Sink) describe(ctx context.Context, r ref, what string) (*state, error) {
	out, err := s.api.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String(r.id)})
	if errorCode(err) == "ResourceNotFoundException" {
		return &state{}, nil
	}
	if err != nil {
		return nil, classify(what, err)
	}
	st := &state{exists: out.DeletedDate == nil, deleted: out.DeletedDate != nil, stages: map[string]string{}}
	for _, tag := range out.Tags {
		if aws.ToString(tag.Key) == s.cfg.ManagedTagKey && aws.ToString(tag.Value) == s.cfg.ManagedTagValue {
			st.managed = true
		}
	}
	for id, labels := range out.VersionIdsToStages {
		for _, l := range labels {
			st.stages[l] = id
		}
	}
	return st, nil
}

// read describes the secret and reads the value of its labels (only those
// listed, or all three), always by VersionStage (moto, unlike AWS, keeps
// serving the old version to a read without one). A label that moved
// between the describe and a value read makes the whole read start over.
// In string format, a version whose fingerprint the sink already knows
// (it wrote it, or read it before: versions never change) is not read
// again, unless values are needed (ReadPending, ReadValue).
func (s *Sink) read(ctx context.Context, r ref, op string, only ...string) (*state, error) {
	what := fmt.Sprintf("awssm: %s %s", op, r.id)
	useKnown := r.format == FormatString && op != "read pending" && op != "read value"
	for attempt := 1; ; attempt++ {
		st, err := s.describe(ctx, r, what)
		if err != nil || !st.exists {
			return st, err
		}
		st.versions = map[string]*version{}
		moved := false
		get := func(label string) error {
			id, ok := st.stages[label]
			if !ok || st.versions[id] != nil {
				return nil
			}
			if fp, ok := s.fps.get(r.memo(), id); ok && useKnown {
				st.versions[id] = &version{id: id, fp: fp}
				return nil
			}
			if len(only) > 0 && !slices.Contains(only, label) {
				return nil
			}
			out, err := s.api.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String(r.id), VersionStage: aws.String(label)})
			if err != nil {
				return classify(what, err)
			}
			if aws.ToString(out.VersionId) != id {
				moved = true
			}
			v, err := parse(r, id, out)
			if err != nil {
				return rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("%s: %s version %s: %w", what, label, id, err))
			}
			st.versions[id] = v
			if !moved {
				s.fps.put(r.memo(), id, v.fp)
			}
			return nil
		}
		for _, label := range []string{stageCurrent, stagePending, stagePrevious} {
			if err := get(label); err != nil {
				return nil, err
			}
		}
		st.relink()
		if !moved {
			s.last.put(r.memo(), st, time.Now())
			return st, nil
		}
		if attempt == maxAttempts {
			return nil, rotator.WithReason(rotator.ReasonConflict, fmt.Errorf("%s: labels kept moving while reading: %w", what, rotator.ErrConflict))
		}
	}
}

// parse extracts the key from a version. Errors never quote the value.
func parse(r ref, id string, out *sm.GetSecretValueOutput) (*version, error) {
	if out.SecretString == nil {
		return nil, errors.New("holds a binary value; only SecretString is supported")
	}
	raw := *out.SecretString
	v := &version{id: id}
	if r.format == FormatString {
		v.value = raw
	} else {
		if err := json.Unmarshal([]byte(raw), &v.others); err != nil || v.others == nil {
			return nil, errors.New("is not a JSON object")
		}
		if field, ok := v.others[r.field]; ok {
			if err := json.Unmarshal(field, &v.value); err != nil {
				return nil, fmt.Errorf("field %q is not a string", r.field)
			}
			delete(v.others, r.field)
		}
	}
	if v.value != "" {
		v.fp = rotator.Fingerprint(v.value)
	}
	return v, nil
}

// compose is the SecretString holding key, with the other fields of base
// in JSON format.
func compose(r ref, base *version, key string) string {
	if r.format == FormatString {
		return key
	}
	fields := map[string]json.RawMessage{}
	if base != nil {
		fields = maps.Clone(base.others)
	}
	k, _ := json.Marshal(key)
	fields[r.field] = k
	b, _ := json.Marshal(fields) // keys sorted: the same input gives the same string
	return string(b)
}

// Inspect reports the fingerprints of the current, pending and previous
// versions.
func (s *Sink) Inspect(ctx context.Context, t rotator.Target) (rotator.SinkState, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	r, err := s.resolve(t)
	if err != nil {
		return rotator.SinkState{}, err
	}
	st, err := s.read(ctx, r, "inspect")
	if err != nil || !st.exists {
		return rotator.SinkState{}, err
	}
	fp := func(v *version) string {
		if v == nil {
			return ""
		}
		return v.fp
	}
	return rotator.SinkState{Exists: true, Managed: st.managed, Current: fp(st.current), Pending: fp(st.pending), Previous: fp(st.prev)}, nil
}

// ReadPending returns the staged secret with fingerprint want (the current
// one when a first delivery went straight to current).
func (s *Sink) ReadPending(ctx context.Context, t rotator.Target, want string) (rotator.Secret, error) {
	return s.readByFingerprint(ctx, t, want, "read pending", false)
}

// ReadValue reads back the value with fingerprint want from any labelled
// version, AWSPREVIOUS too (a person's confirmation that they revoked it is
// probed with it). Never logged.
func (s *Sink) ReadValue(ctx context.Context, t rotator.Target, want string) (rotator.Secret, error) {
	return s.readByFingerprint(ctx, t, want, "read value", true)
}

func (s *Sink) readByFingerprint(ctx context.Context, t rotator.Target, want, what string, previous bool) (rotator.Secret, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	r, err := s.resolve(t)
	if err != nil {
		return rotator.Secret{}, err
	}
	st, err := s.read(ctx, r, what)
	if err != nil {
		return rotator.Secret{}, err
	}
	if st.exists && !st.managed && !s.cfg.Adopt {
		return rotator.Secret{}, s.notManaged(r.id)
	}
	versions := []*version{st.pending, st.current}
	if previous {
		versions = append(versions, st.prev)
	}
	for _, v := range versions {
		if v != nil && want != "" && v.fp == want {
			return rotator.NewSecret(v.value), nil
		}
	}
	return rotator.Secret{}, rotator.PermanentReason(rotator.ReasonInvalid,
		fmt.Errorf("awssm: %s %s: no value with fingerprint %s: %w", what, r.id, rotator.ShortFingerprint(want), rotator.ErrNotFound))
}

// findVersion looks for a labelled version holding fingerprint want, or
// else accepts seen, a version found by an earlier attempt of the same call
// whose label another writer has since moved away. Versions without a label
// are not searched: after cleanup the old value is revoked and must not come
// back.
func findVersion(st *state, want string, seen *version) *version {
	for _, v := range []*version{st.prev, st.pending, st.current} {
		if v != nil && v.fp == want {
			return v
		}
	}
	if seen != nil && seen.fp == want {
		return seen
	}
	return nil
}
