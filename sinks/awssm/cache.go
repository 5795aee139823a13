package awssm

import (
	"errors"
	"maps"
	"sync"
	"time"

	"github.com/rekeyhq/rekey/sinks/internal/memo"
)

// errNothing is what a step's act returns when it found its work done and
// wrote nothing; on a remembered state, the step confirms it on a fresh
// read before it concludes.
var errNothing = errors.New("nothing to do")

// cacheTTL bounds how long the state of a secret this process last read
// or wrote is reused: long enough for the steps of one rotation that
// follow each other at once (preflight → stage → promote; the re-check
// before the revoke → cleanup), short enough that values it holds do not
// linger in memory. Anything later reads again.
const cacheTTL = 2 * time.Minute

// lastState remembers, per secret, the labels (and the versions they
// point at) that this process last described or set, so that the next
// step of the same rotation acts without describing the secret again. It
// is only a guess that saves round trips: moving AWSCURRENT names the
// version it is taken from (a check-and-set Secrets Manager enforces), a
// label removal that misses is checked against a fresh describe, puts are
// idempotent by their ClientRequestToken, and a step that would refuse, or
// write nothing, on a remembered state describes again before it
// concludes. A crash loses the cache: a restarted step starts from a fresh
// read. Inspect always describes: the check before a revoke is never
// answered from memory.
type lastState struct{ mem memo.TTL[*state] }

func (c *lastState) get(id string, now time.Time) *state {
	if st, ok := c.mem.Get(id, now, cacheTTL); ok {
		return st.clone()
	}
	return nil
}

func (c *lastState) put(id string, st *state, now time.Time) {
	c.mem.Put(id, st.clone(), now, cacheTTL)
}

func (c *lastState) forget(id string) { c.mem.Forget(id) }

// clone copies the labels; versions are never changed once parsed.
func (st *state) clone() *state {
	cp := *st
	cp.stages = maps.Clone(st.stages)
	cp.versions = maps.Clone(st.versions)
	return &cp
}

// fingerprints remembers the fingerprint of the key each version holds, by
// secret and version id. A version's content never changes, so what it
// knows never goes stale: a version rekey wrote is known from the moment
// it wrote it (its id is the ClientRequestToken rekey chose), and any other
// is known after one GetSecretValue. It keeps only fingerprints, never a
// value, and a few versions per secret (the labelled ones are at most
// three).
type fingerprints struct {
	mu sync.Mutex
	m  map[string][]known
}

type known struct{ id, fp string }

const knownPerSecret = 6

func (f *fingerprints) get(secret, id string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range f.m[secret] {
		if k.id == id {
			return k.fp, true
		}
	}
	return "", false
}

func (f *fingerprints) put(secret, id, fp string) {
	if id == "" {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string][]known{}
	}
	list := f.m[secret]
	for _, k := range list {
		if k.id == id {
			return
		}
	}
	list = append(list, known{id, fp})
	if len(list) > knownPerSecret {
		list = list[len(list)-knownPerSecret:]
	}
	f.m[secret] = list
}

func (f *fingerprints) forget(secret string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m, secret)
}
