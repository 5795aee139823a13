package prometheus_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// The source answers old-key use with old_key_query (or the key's), the
// rest with query; it says which it can answer; the query it ran comes
// back with the reading; and with NotBefore the window starts no earlier
// than it (the watch must not count traffic from before the revoke).
func TestQuestionsAndWindow(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.URL.Query().Get("query"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"scalar","result":[1700000000,"0"]}}`))
	}))
	t.Cleanup(srv.Close)
	last := func() string { mu.Lock(); defer mu.Unlock(); return got[len(got)-1] }

	cfg := cfgFor(srv.URL, `sum(rate(fail{id="{{promql .NewID}}"}[{{.Window}}]))`, 5*time.Minute)
	if a := cfg.Answers(nil); len(a) != 1 || a[0] != rotator.NewKeyFailures {
		t.Fatalf("a 401 query alone answers %v", a)
	}
	if a := cfg.Answers(map[rotator.Question]string{rotator.OldKeyUse: "x"}); len(a) != 2 {
		t.Fatalf("with a key's old_key_query: %v", a)
	}
	s := newSource(t, cfg)
	q := rotator.TrafficQuery{Key: "api", OldID: "k1", NewID: "k2", Question: rotator.OldKeyUse}
	if _, err := read(s, q); err == nil || !rotator.IsPermanent(err) || !strings.Contains(err.Error(), "old_key_query") {
		t.Fatalf("old-key use without an old-key query: %v", err)
	}
	cfg.OldKeyQuery = `sum(rate(req{id="{{promql .OldID}}"}[{{.Window}}]))`
	if a := cfg.Answers(nil); len(a) != 2 || a[0] != rotator.OldKeyUse {
		t.Fatalf("with old_key_query: %v", a)
	}
	s = newSource(t, cfg)
	r, err := read(s, q)
	if err != nil || last() != `sum(rate(req{id="k1"}[5m]))` || r.Query != last() {
		t.Fatalf("old-key use ran %q (reading %+v, %v)", last(), r, err)
	}
	q.Question = rotator.NewKeyFailures
	if _, err := read(s, q); err != nil || last() != `sum(rate(fail{id="k2"}[5m]))` {
		t.Fatalf("failures ran %q (%v)", last(), err)
	}
	q.NotBefore = time.Now().Add(-1500 * time.Millisecond)
	if _, err := read(s, q); err != nil || !strings.Contains(last(), "[1s5") {
		t.Fatalf("a window since the revoke 1.5s ago ran %q (%v)", last(), err)
	}
	q.NotBefore = time.Now().Add(-time.Hour)
	if _, err := read(s, q); err != nil || !strings.Contains(last(), "[5m]") {
		t.Fatalf("a revoke long ago keeps the window: %q (%v)", last(), err)
	}
	q.NotBefore = time.Now().Add(time.Minute)
	if _, err := read(s, q); err == nil || rotator.IsPermanent(err) {
		t.Fatalf("nothing since the revoke yet must be a retryable error: %v", err)
	}
}
