package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// memIssuer and memSink are adapters that cost (almost) nothing, so that a
// benchmark measures the engine and its store: an issuer that mints at
// once and reports each revoke on a channel, and a sink that keeps its
// slots in memory.
type memIssuer struct {
	mu      sync.Mutex
	revoked chan string // names of revoked credentials, if set
}

func (i *memIssuer) Mint(_ context.Context, r rotator.MintRequest) (rotator.Minted, error) {
	return rotator.Minted{ID: r.Name, Secret: rotator.NewSecret("secret-" + r.Name)}, nil
}

func (i *memIssuer) Revoke(_ context.Context, r rotator.CredentialRef) error {
	if i.revoked != nil {
		select {
		case i.revoked <- r.Key:
		default:
		}
	}
	return nil
}

func (i *memIssuer) FindByName(context.Context, string, string) ([]string, error) { return nil, nil }

type memSink struct {
	mu    sync.Mutex
	slots map[string]rotator.SinkState
}

func (s *memSink) with(t rotator.Target, fn func(st *rotator.SinkState)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.slots == nil {
		s.slots = map[string]rotator.SinkState{}
	}
	st := s.slots[t.Path]
	fn(&st)
	s.slots[t.Path] = st
}

func (s *memSink) Stage(_ context.Context, t rotator.Target, d rotator.Delivery) error {
	s.with(t, func(st *rotator.SinkState) {
		if st.Current == "" {
			st.Current = d.Fingerprint
		} else if st.Current != d.Fingerprint {
			st.Pending = d.Fingerprint
		}
	})
	return nil
}

func (s *memSink) Promote(_ context.Context, t rotator.Target, d rotator.Delivery) error {
	s.with(t, func(st *rotator.SinkState) {
		if st.Current != d.Fingerprint {
			st.Previous, st.Current, st.Pending = st.Current, d.Fingerprint, ""
		}
	})
	return nil
}

func (s *memSink) Cleanup(_ context.Context, t rotator.Target, d rotator.Delivery) error {
	s.with(t, func(st *rotator.SinkState) {
		st.Previous = ""
		if st.Pending != d.Fingerprint {
			st.Pending = ""
		}
	})
	return nil
}

func (s *memSink) Rollback(_ context.Context, t rotator.Target, d rotator.Delivery) error {
	s.with(t, func(st *rotator.SinkState) {
		if st.Current == d.Fingerprint {
			st.Current, st.Previous = d.OldFingerprint, ""
		}
		st.Pending = ""
	})
	return nil
}

func (s *memSink) Inspect(_ context.Context, t rotator.Target) (rotator.SinkState, error) {
	var out rotator.SinkState
	s.with(t, func(st *rotator.SinkState) { out = *st })
	return out, nil
}

// countingNotifier accepts every event.
type countingNotifier struct{ n atomic.Int64 }

func (c *countingNotifier) Notify(context.Context, rotator.Event) error {
	c.n.Add(1)
	return nil
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(deadline time.Duration, cond func() bool) bool {
	for end := time.Now().Add(deadline); time.Now().Before(end); time.Sleep(time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}
