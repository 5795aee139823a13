package rotator

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Namespaces of the engine's own state.
const (
	stateDeparted       = "rekey.departed"
	stateDecommissioned = "rekey.decommissioned"
	stateAgeWarned      = "rekey.age_warned"
)

// markDeparted remembers people who left, so that they count as owners of
// no key from now on, across restarts, and decide and request nothing
// (Departed). The first time a person was marked, and by which webhook, is
// kept.
func (e *Engine) markDeparted(ctx context.Context, who []string, at time.Time, via string) error {
	if e.state == nil {
		return nil
	}
	gone, err := e.departedAmong(ctx, who)
	if err != nil {
		return err
	}
	for _, w := range who {
		if gone[CanonicalIdentity(w)] || ownActor(CanonicalIdentity(w)) {
			continue
		}
		if err := e.state.PutState(ctx, stateDeparted, CanonicalIdentity(w), encodeDeparture(Departure{At: at, Via: via})); err != nil {
			return err
		}
	}
	e.departed.forget()
	return nil
}

// departedCache is the set of people who left, as notifications need it:
// read from the store at most every departedFresh (a departure another
// daemon recorded reaches this one's notifications within that), and at
// once after this engine marks someone.
type departedCache struct {
	mu     sync.Mutex
	set    map[string]bool
	readAt time.Time
}

const departedFresh = 30 * time.Second

func (c *departedCache) forget() {
	c.mu.Lock()
	c.set = nil
	c.mu.Unlock()
}

// presentOwners drops the people who left from owners of key k: no
// notification mentions or pages someone who is gone. When none is left,
// the key's approvers who are still here stand in, so that an event that
// needs a person (a leak of a key only a person can revoke) still reaches
// someone. When the store cannot say, the owners are kept (a mention too
// many, never a notification lost).
func (e *Engine) presentOwners(k *Key, owners []string) []string {
	l, ok := e.state.(StateLister)
	if !ok {
		return owners
	}
	c := &e.departed
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := e.clock.Now(); c.set == nil || now.Sub(c.readAt) >= departedFresh || now.Before(c.readAt) {
		m, err := l.ListState(context.Background(), stateDeparted)
		if err != nil {
			return owners
		}
		c.set = make(map[string]bool, len(m))
		for who := range m {
			c.set[who] = true
		}
		c.readAt = now
	}
	if len(c.set) == 0 {
		return owners
	}
	present := func(people []string) []string {
		out := make([]string, 0, len(people))
		for _, o := range people {
			if !c.set[CanonicalIdentity(o)] {
				out = append(out, o)
			}
		}
		return out
	}
	out := present(owners)
	if len(out) == 0 && k != nil {
		out = present(k.Approval.Approvers)
	}
	return out
}

// departedAmong returns which of the identities (canonical) were marked
// departed.
func (e *Engine) departedAmong(ctx context.Context, who []string) (map[string]bool, error) {
	out := map[string]bool{}
	if e.state == nil {
		return out, nil
	}
	for _, w := range who {
		_, gone, err := e.state.GetState(ctx, stateDeparted, CanonicalIdentity(w))
		if err != nil {
			return nil, err
		}
		if gone {
			out[CanonicalIdentity(w)] = true
		}
	}
	return out, nil
}

// Owners returns the owners on file of the key named key, split into those
// who count as owners and those reported as departed (who count as owners
// of no key any more).
func (e *Engine) Owners(ctx context.Context, key string) (current, departed []string) {
	k, ok := e.keys[key]
	if !ok {
		return nil, nil
	}
	current = e.owners(ctx, k)
	for _, o := range k.Owners {
		if !slices.Contains(current, o) {
			departed = append(departed, o)
		}
	}
	return current, departed
}

// owners returns k's owners on file who have not left.
func (e *Engine) owners(ctx context.Context, k *Key) []string {
	if e.state == nil {
		return k.Owners
	}
	out := make([]string, 0, len(k.Owners))
	for _, o := range k.Owners {
		if _, gone, err := e.state.GetState(ctx, stateDeparted, CanonicalIdentity(o)); err == nil && gone {
			continue
		}
		out = append(out, o)
	}
	return out
}

// Decommissioned reports whether a key was decommissioned: it is no longer
// bootstrapped or rotated until it is removed from the configuration.
func (e *Engine) Decommissioned(ctx context.Context, key string) bool {
	if e.state == nil {
		return false
	}
	v, ok, err := e.state.GetState(ctx, stateDecommissioned, key)
	return err == nil && ok && v != "" // "": recommissioned

}

// decommissionedSet lists decommissioned keys in one call where the state
// store can, else asks per key.
func (e *Engine) decommissionedSet(ctx context.Context) map[string]bool {
	out := map[string]bool{}
	if e.state == nil {
		return out
	}
	if l, ok := e.state.(StateLister); ok {
		m, err := l.ListState(ctx, stateDecommissioned)
		if err == nil {
			for k, v := range m {
				if v != "" {
					out[k] = true
				}
			}
			return out
		}
	}
	for _, name := range e.keyOrder {
		if e.Decommissioned(ctx, name) {
			out[name] = true
		}
	}
	return out
}

func (e *Engine) markDecommissioned(ctx context.Context, key string, at time.Time) error {
	if e.state == nil {
		return nil
	}
	return e.state.PutState(ctx, stateDecommissioned, key, at.UTC().Format(time.RFC3339))
}

// recommission forgets that key was decommissioned (a person asked to
// mint it again).
func (e *Engine) recommission(ctx context.Context, key string) error {
	if e.state == nil {
		return nil
	}
	return e.state.PutState(ctx, stateDecommissioned, key, "")
}
