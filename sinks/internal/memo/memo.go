// Package memo is the short-lived memory a key/value sink keeps of what it
// last read or wrote for a secret, so that the next step of the same
// rotation needs no fresh read (docs/ADAPTERS.md, "API calls per
// rotation"). An entry expires after its TTL; expired entries are dropped
// on Put, once a TTL. A sink must treat what it remembers as a guess the
// store can refuse (check-and-set), and never answer the check before a
// revoke from it.
package memo

import (
	"sync"
	"time"
)

// TTL maps keys to values that expire a period after they were put. The
// zero value is an empty memory; the period is the caller's, given to Get
// and Put.
type TTL[V any] struct {
	mu     sync.Mutex
	m      map[string]entry[V]
	pruned time.Time
}

type entry[V any] struct {
	v  V
	at time.Time
}

// Get returns the value put for key, unless it is older than ttl by now.
func (c *TTL[V]) Get(key string, now time.Time, ttl time.Duration) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if ok && now.Sub(e.at) > ttl {
		delete(c.m, key)
		ok = false
	}
	if !ok {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Put remembers v for key as of now, dropping (once a ttl) what is older
// than ttl.
func (c *TTL[V]) Put(key string, v V, now time.Time, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]entry[V]{}
	}
	if now.Sub(c.pruned) > ttl { // drop what expired, once a period
		for k, e := range c.m {
			if now.Sub(e.at) > ttl {
				delete(c.m, k)
			}
		}
		c.pruned = now
	}
	c.m[key] = entry[V]{v: v, at: now}
}

// Forget drops key.
func (c *TTL[V]) Forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, key)
}
