package kubeadapt

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// The drain gate's two questions, whatever match and count say: old-key
// use counts every request made with the old key (200s included), failures
// count the 401s of the new key and of unidentifiable keys — and neither
// counts the other's traffic.
func TestQuestions(t *testing.T) {
	e := newEnv(t)
	oldID, oldSecret := e.key(t, "billing-v1")
	newID, newSecret := e.key(t, "billing-v2")
	e.call(t, oldSecret, 1, http.StatusOK)
	e.call(t, newSecret, 1, http.StatusOK)
	s := e.source(t, func(c *Config) { c.Match = []string{MatchUnknown}; c.Count = CountUnauthorized })
	q := rotator.TrafficQuery{Key: "billing", OldID: oldID, OldName: "billing-v1", NewID: newID, NewName: "billing-v2"}
	use, fail := q, q
	use.Question, fail.Question = rotator.OldKeyUse, rotator.NewKeyFailures
	wantErr(t, s, use, false, "baseline established")
	wantErr(t, s, fail, false, "baseline established")
	e.call(t, oldSecret, 4, http.StatusOK)                                    // old key, still valid: use, not failure
	e.call(t, newSecret, 3, http.StatusOK)                                    // new key works: neither
	e.call(t, "ka_live_"+strings.Repeat("y", 32), 2, http.StatusUnauthorized) // unidentifiable: failure
	e.clock.Advance(10 * time.Second)
	wantRate(t, s, use, 0.4, "4 requests for key_id "+oldID+" (billing-v1)")
	r, err := poll(s, fail)
	if err != nil || r.Value != 0.2 || !strings.Contains(r.Query, "401 answers for key_id "+newID+" (billing-v2) and unidentified keys") {
		t.Fatalf("failures: %+v %v", r, err)
	}
	// After the revoke the watch asks with NotBefore: a baseline from
	// before it is not used (its requests were before the revoke).
	e.call(t, oldSecret, 5, http.StatusOK)
	revoked := e.clock.Now().Add(time.Second)
	e.clock.Advance(2 * time.Second)
	watch := use
	watch.NotBefore = revoked
	wantErr(t, s, watch, false, "baseline established")
	e.clock.Advance(10 * time.Second)
	wantRate(t, s, watch, 0, "0 requests")
}
