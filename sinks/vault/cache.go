package vault

import (
	"sync"
	"time"
)

// cacheTTL bounds how long the state of a secret this process last read or
// wrote is reused. It covers the steps of one rotation that follow each
// other at once (preflight → stage → promote; the re-check before the
// revoke → cleanup); anything later reads again. It also bounds how long
// the values a version holds stay in memory after a rotation moved on.
const cacheTTL = 2 * time.Minute

// lastState remembers, per secret, the state this process last read or
// wrote, so that the next write of the same rotation is a check-and-set on
// the version the previous call saw or created instead of a read and a
// write. It is only a guess that saves a round trip: every write carries
// cas = the remembered version, so Vault refuses it when anyone else wrote
// in between (the step is then redone from a fresh read), and a step that
// would write nothing, or refuse, on a remembered state reads again before
// it concludes. A crash loses the cache, so a restarted step starts from a
// fresh read. Inspect always reads: the check before a revoke is never
// answered from memory.
type lastState struct {
	mu     sync.Mutex
	m      map[string]cachedState
	pruned time.Time
}

type cachedState struct {
	st *state
	at time.Time
}

func (c *lastState) get(key string, now time.Time) *state {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok {
		return nil
	}
	if now.Sub(e.at) > cacheTTL {
		delete(c.m, key)
		return nil
	}
	return e.st
}

func (c *lastState) put(key string, st *state, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]cachedState{}
	}
	if now.Sub(c.pruned) > cacheTTL { // drop what expired, once a period
		for k, e := range c.m {
			if now.Sub(e.at) > cacheTTL {
				delete(c.m, k)
			}
		}
		c.pruned = now
	}
	c.m[key] = cachedState{st: st, at: now}
}

func (c *lastState) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, key)
}
