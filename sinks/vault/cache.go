package vault

import (
	"time"

	"github.com/rekeyhq/rekey/sinks/internal/memo"
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
type lastState struct{ mem memo.TTL[*state] }

func (c *lastState) get(key string, now time.Time) *state {
	st, _ := c.mem.Get(key, now, cacheTTL)
	return st
}

func (c *lastState) put(key string, st *state, now time.Time) { c.mem.Put(key, st, now, cacheTTL) }

func (c *lastState) forget(key string) { c.mem.Forget(key) }
