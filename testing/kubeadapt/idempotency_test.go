package kubeadapt_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/testing/kubeadapt"
)

// createWithKey posts body to the create call with the Idempotency-Key
// header set to the raw value key ("" for none).
func (e *env) createWithKey(key, body string) response {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url+"/admin/v1/api-keys", strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if key != "" {
		req.Header.Set(kubeadapt.IdempotencyHeader, key)
	}
	return send(e.t, req)
}

const ciV1 = `{"name":"ci-v1","scopes":["clusters:read"]}`

// The same key and payload within the window replay the first answer —
// the same id and the same secret, which still works — without creating
// a second key; the replay is marked and counted.
func TestIdempotencyKeyReplaysTheFirstAnswer(t *testing.T) {
	e := newEnv(t)
	first := e.createWithKey(`"rot-1-v1"`, ciV1)
	if first.code != http.StatusCreated || first.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first: %d %v", first.code, first.header)
	}
	e.clock.Advance(time.Hour)
	again := e.createWithKey(`"rot-1-v1"`, ciV1)
	if again.code != http.StatusCreated || again.header.Get("Idempotent-Replayed") != "true" ||
		again.header.Get("Location") != first.header.Get("Location") {
		t.Fatalf("replay: %d %v", again.code, again.header)
	}
	a, b := decode[created](t, first.body), decode[created](t, again.body)
	if a.ID != b.ID || a.Secret != b.Secret || a.Secret == "" {
		t.Fatalf("replay answered %s, first %s (same secret: %v)", b.ID, a.ID, a.Secret == b.Secret)
	}
	if n := len(e.s.Keys()); n != 1 {
		t.Fatalf("%d keys created, want 1", n)
	}
	if got := e.get("/v1/clusters", b.Secret); got.code != http.StatusOK {
		t.Fatalf("replayed secret: data API %d", got.code)
	}
	if st := e.s.Idempotency(); st.Replays != 1 || st.Mismatches != 0 || st.InFlight != 0 {
		t.Fatalf("stats %+v", st)
	}
	// Another key is another request; no key at all is served as before.
	if r := e.createWithKey(`"rot-1-v2"`, ciV1); r.code != http.StatusCreated || decode[created](t, r.body).ID == a.ID {
		t.Fatalf("another key: %d", r.code)
	}
	if r := e.createWithKey("", ciV1); r.code != http.StatusCreated {
		t.Fatalf("no key: %d", r.code)
	}
	if n := len(e.s.Keys()); n != 3 {
		t.Fatalf("%d keys created, want 3", n)
	}
}

// An answer that was an error is replayed too (the draft: "success or an
// error"), and does not create anything.
func TestIdempotencyKeyReplaysAnError(t *testing.T) {
	e := newEnv(t)
	bad := `{"name":"ci-v1","scopes":["nope"]}`
	for i := range 2 {
		r := e.createWithKey(`"k"`, bad)
		if r.code != http.StatusUnprocessableEntity || (i == 1) != (r.header.Get("Idempotent-Replayed") == "true") {
			t.Fatalf("try %d: %d %v %s", i, r.code, r.header, r.body)
		}
	}
	if n := len(e.s.Keys()); n != 0 {
		t.Fatalf("%d keys created", n)
	}
}

// The same key with another payload is refused with 422 and creates
// nothing; the key still replays its own payload's answer.
func TestIdempotencyKeyWithAnotherPayloadIs422(t *testing.T) {
	e := newEnv(t)
	first := decode[created](t, e.createWithKey(`"k"`, ciV1).body)
	r := e.createWithKey(`"k"`, `{"name":"ci-v2","scopes":["clusters:read"]}`)
	if r.code != http.StatusUnprocessableEntity || !strings.Contains(r.detail(t), "another payload") {
		t.Fatalf("other payload: %d %s", r.code, r.body)
	}
	if again := decode[created](t, e.createWithKey(`"k"`, ciV1).body); again.ID != first.ID {
		t.Fatalf("after the 422 the key answered %s, want %s", again.ID, first.ID)
	}
	if n, st := len(e.s.Keys()), e.s.Idempotency(); n != 1 || st.Mismatches != 1 || st.Replays != 1 {
		t.Fatalf("%d keys, stats %+v", n, st)
	}
}

// A retry while the key's first request is still being processed gets
// 409 and creates nothing; once the first finished, the retry replays it.
func TestIdempotencyKeyInFlightIs409(t *testing.T) {
	// The first create is held until released; the others pass (a
	// non-blocking send raced the test's receive and could hold nothing).
	entered, release := make(chan struct{}, 1), make(chan struct{})
	var once sync.Once
	s := kubeadapt.New(kubeadapt.Options{AdminToken: adminToken, OnCreate: func(string) {
		held := false
		once.Do(func() { held = true })
		if held {
			entered <- struct{}{}
			<-release
		}
	}})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	e := &env{t: t, s: s, url: ts.URL}
	firstDone := make(chan response, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/admin/v1/api-keys", strings.NewReader(ciV1))
		req.Header.Set("Authorization", "Bearer "+adminToken)
		req.Header.Set(kubeadapt.IdempotencyHeader, `"k"`)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			firstDone <- response{}
			return
		}
		defer resp.Body.Close()
		var c created
		_ = json.NewDecoder(resp.Body).Decode(&c)
		firstDone <- response{code: resp.StatusCode, body: []byte(c.ID)}
	}()
	<-entered // the first request is inside the create call
	r := e.createWithKey(`"k"`, ciV1)
	if r.code != http.StatusConflict || !strings.Contains(r.detail(t), "still being processed") {
		t.Fatalf("during the first request: %d %s", r.code, r.body)
	}
	close(release)
	first := <-firstDone
	if first.code != http.StatusCreated {
		t.Fatalf("first request: %d", first.code)
	}
	if again := decode[created](t, e.createWithKey(`"k"`, ciV1).body); again.ID != string(first.body) {
		t.Fatalf("after the first finished the key answered %s, want %s", again.ID, first.body)
	}
	if n, st := len(s.Keys()), s.Idempotency(); n != 1 || st.InFlight != 1 || st.Replays != 1 {
		t.Fatalf("%d keys, stats %+v", n, st)
	}
}

// A key expires IdempotencyTTL after its first request: the same request
// then creates a second key.
func TestIdempotencyKeyExpires(t *testing.T) {
	clock := &fakeClock{now: t0}
	s := kubeadapt.New(kubeadapt.Options{AdminToken: adminToken, Clock: clock.Now, IdempotencyTTL: time.Hour})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	e := &env{t: t, s: s, url: ts.URL, clock: clock}
	first := decode[created](t, e.createWithKey(`"k"`, ciV1).body)
	clock.Advance(59 * time.Minute)
	if r := decode[created](t, e.createWithKey(`"k"`, ciV1).body); r.ID != first.ID {
		t.Fatalf("within the window: %s, want %s", r.ID, first.ID)
	}
	clock.Advance(time.Minute)
	r := e.createWithKey(`"k"`, ciV1)
	if r.code != http.StatusCreated || r.header.Get("Idempotent-Replayed") != "" || decode[created](t, r.body).ID == first.ID {
		t.Fatalf("after the window: %d %v", r.code, r.header)
	}
	if n, st := len(s.Keys()), s.Idempotency(); n != 2 || st.Expired != 1 || st.Replays != 1 {
		t.Fatalf("%d keys, stats %+v", n, st)
	}
}

// A key that is not one sf-string is a 400 and creates nothing; so is a
// request with two Idempotency-Key fields. A malformed body releases the
// key: corrected, the request goes through.
func TestIdempotencyKeyMalformed(t *testing.T) {
	e := newEnv(t)
	for _, k := range []string{`bare-token`, `""`, `"unterminated`, `"a"b"`, `"` + strings.Repeat("x", 256) + `"`, "\"tab\there\""} {
		if r := e.createWithKey(k, ciV1); r.code != http.StatusBadRequest {
			t.Errorf("key %q: %d, want 400", k, r.code)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, e.url+"/admin/v1/api-keys", strings.NewReader(ciV1))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Add(kubeadapt.IdempotencyHeader, `"a"`)
	req.Header.Add(kubeadapt.IdempotencyHeader, `"b"`)
	if r := send(t, req); r.code != http.StatusBadRequest {
		t.Errorf("two fields: %d, want 400", r.code)
	}
	if r := e.createWithKey(`"k"`, `{"name":`); r.code != http.StatusBadRequest {
		t.Fatalf("malformed body: %d", r.code)
	}
	if r := e.createWithKey(`"k"`, ciV1); r.code != http.StatusCreated || r.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("corrected body: %d %v", r.code, r.header)
	}
	if r := e.createWithKey(`"esc\"aped\\"`, ciV1); r.code != http.StatusCreated {
		t.Fatalf("escaped sf-string: %d", r.code)
	}
	if n := len(e.s.Keys()); n != 2 {
		t.Fatalf("%d keys created, want 2", n)
	}
}

// A key sent as "idempotency_key" in the body, for clients that cannot set
// the header, is honoured alike: the same key and body replay the first
// key, id and secret; another key creates another; a malformed body key is
// 400 and creates nothing.
func TestIdempotencyKeyInTheBody(t *testing.T) {
	e := newEnv(t)
	withKey := `{"name":"ci-v2","scopes":["clusters:read"],"idempotency_key":"rekey-rot_1-v2"}`
	first := e.createWithKey("", withKey)
	again := e.createWithKey("", withKey)
	if first.code != http.StatusCreated || again.code != http.StatusCreated || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("first %d, again %d %v", first.code, again.code, again.header)
	}
	a, b := decode[created](t, first.body), decode[created](t, again.body)
	if a.ID != b.ID || a.Secret != b.Secret || a.Name != "ci-v2" {
		t.Fatalf("replay answered %s, first %s", b.ID, a.ID)
	}
	other := strings.Replace(withKey, "rot_1-v2", "rot_1-v3", 1)
	if r := e.createWithKey("", other); r.code != http.StatusCreated || decode[created](t, r.body).ID == a.ID {
		t.Fatalf("another body key: %d", r.code)
	}
	for _, bad := range []string{`""`, `"caf\u00e9"`, `"` + strings.Repeat("k", 256) + `"`} {
		body := `{"name":"ci-v9","scopes":["clusters:read"],"idempotency_key":` + bad + `}`
		if r := e.createWithKey("", body); r.code != http.StatusBadRequest {
			t.Fatalf("body key %s: %d, want 400", bad, r.code)
		}
	}
	if n, st := len(e.s.Keys()), e.s.Idempotency(); n != 2 || st.Replays != 1 {
		t.Fatalf("%d keys, %+v; want 2 keys and 1 replay", n, st)
	}
}

// FailNextCreates fails from behind the idempotency layer: the answer to
// a key's first request, a 500, is stored and replayed for the key even
// once the service works again; another key creates the credential.
func TestIdempotencyKeyStoresAnInjectedCreateFailure(t *testing.T) {
	e := newEnv(t)
	e.s.FailNextCreates(1, http.StatusInternalServerError)
	for i := range 3 {
		r := e.createWithKey(`"k1"`, ciV1)
		if r.code != http.StatusInternalServerError || (i > 0) != (r.header.Get("Idempotent-Replayed") == "true") {
			t.Fatalf("try %d: %d %v", i, r.code, r.header)
		}
	}
	if n := len(e.s.Keys()); n != 0 {
		t.Fatalf("%d keys created by failed creates", n)
	}
	if r := e.createWithKey(`"k2"`, ciV1); r.code != http.StatusCreated {
		t.Fatalf("a new key after the stored failure: %d", r.code)
	}
	if st := e.s.Idempotency(); st.Replays != 2 {
		t.Fatalf("stats %+v, want 2 replays", st)
	}
}
