package rotator

import (
	"context"
	"strings"
	"time"
)

// Namespaces of the engine's own state.
const (
	stateDeparted       = "rekey.departed"
	stateDecommissioned = "rekey.decommissioned"
)

// markDeparted remembers people who left, so that they count as owners of
// no key from now on, across restarts.
func (e *Engine) markDeparted(ctx context.Context, who []string, at time.Time) error {
	if e.state == nil {
		return nil
	}
	for _, w := range who {
		if err := e.state.PutState(ctx, stateDeparted, strings.ToLower(w), at.UTC().Format(time.RFC3339)); err != nil {
			return err
		}
	}
	return nil
}

// owners returns k's owners on file who have not left.
func (e *Engine) owners(ctx context.Context, k *Key) []string {
	if e.state == nil {
		return k.Owners
	}
	out := make([]string, 0, len(k.Owners))
	for _, o := range k.Owners {
		if _, gone, err := e.state.GetState(ctx, stateDeparted, strings.ToLower(o)); err == nil && gone {
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
