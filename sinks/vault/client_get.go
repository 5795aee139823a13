package vault

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/rekeyhq/rekey/rotator"
)

// state is what one read found at a secret.
type state struct {
	exists  bool           // the secret has metadata (possibly no live version)
	managed bool           // custom metadata managed-by: rekey
	version int            // current version, the check-and-set value for the next write
	data    map[string]any // the current version's data; nil if deleted or none
	custom  map[string]any // custom metadata
	slots   kv
}

// read fetches the latest version with its metadata in one request; only
// when there is no readable version does it fall back to the metadata
// endpoint (a secret whose versions are all deleted, or brand new).
func (s *Sink) read(ctx context.Context, r ref, op string) (*state, error) {
	what := fmt.Sprintf("vault: %s %s", op, r)
	sec, err := s.do(ctx, what, nil, func() (*api.Secret, error) {
		return s.client.Logical().ReadWithContext(ctx, r.mount+"/data/"+r.path)
	})
	if err != nil {
		return nil, err
	}
	st := &state{}
	if sec != nil && sec.Data != nil {
		st.exists = true
		if d, ok := sec.Data["data"].(map[string]any); ok {
			st.data = d
		}
		md, _ := sec.Data["metadata"].(map[string]any)
		st.version = toInt(md["version"])
		st.custom, _ = md["custom_metadata"].(map[string]any)
	} else {
		sec, err = s.do(ctx, what, nil, func() (*api.Secret, error) {
			return s.client.Logical().ReadWithContext(ctx, r.mount+"/metadata/"+r.path)
		})
		if err != nil {
			return nil, err
		}
		if sec == nil || sec.Data == nil {
			return st, nil
		}
		st.exists = true
		st.version = toInt(sec.Data["current_version"])
		st.custom, _ = sec.Data["custom_metadata"].(map[string]any)
	}
	st.managed = st.custom[markerKey] == markerValue
	if st.slots, err = readSlots(st.data, r.f); err != nil {
		return nil, rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("%s: %w", what, err))
	}
	s.last.put(r.String(), st, time.Now())
	return st, nil
}

// toInt reads a number the API client decoded as json.Number.
func toInt(v any) int {
	switch n := v.(type) {
	case json.Number:
		i, _ := n.Int64()
		return int(i)
	case float64:
		return int(n)
	case int:
		return n
	case string:
		i, _ := strconv.Atoi(n)
		return i
	}
	return 0
}

// Inspect reports the fingerprints the secret holds.
func (s *Sink) Inspect(ctx context.Context, t rotator.Target) (rotator.SinkState, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	r, err := s.resolve(t)
	if err != nil {
		return rotator.SinkState{}, err
	}
	st, err := s.read(ctx, r, "inspect")
	if err != nil {
		return rotator.SinkState{}, err
	}
	return rotator.SinkState{
		Exists:   st.exists,
		Managed:  st.managed,
		Current:  st.slots.Current.Fingerprint(),
		Pending:  st.slots.Pending.Fingerprint(),
		Previous: st.slots.Previous.Fingerprint(),
	}, nil
}

// ReadPending returns the staged secret with fingerprint want (the current
// one when a first delivery went straight to current).
func (s *Sink) ReadPending(ctx context.Context, t rotator.Target, want string) (rotator.Secret, error) {
	return s.readByFingerprint(ctx, t, want, "read pending", false)
}

// ReadValue reads back the value with fingerprint want from any field, the
// previous one too (a person's confirmation that they revoked it is probed
// with it). Never logged.
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
		return rotator.Secret{}, notManaged(r.String())
	}
	slots := []value{st.slots.Pending, st.slots.Current}
	if previous {
		slots = append(slots, st.slots.Previous)
	}
	for _, v := range slots {
		if want != "" && v != "" && v.Fingerprint() == want {
			return rotator.NewSecret(string(v)), nil
		}
	}
	return rotator.Secret{}, rotator.PermanentReason(rotator.ReasonInvalid,
		fmt.Errorf("vault: %s %s: no value with fingerprint %s: %w", what, r, rotator.ShortFingerprint(want), rotator.ErrNotFound))
}
