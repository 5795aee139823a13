package consumer

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/internal/stdwebhooks"
	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/store/sqlite"
	"github.com/rekeyhq/rekey/store/sqlstore"
	"github.com/rekeyhq/rekey/webhooks/internal/webhooktest"
)

// A sender's secret attests only for its keys: another team's key, even
// one rekey manages, is answered exactly like an unknown key (404, the
// same body) and nothing is recorded; the record names the sender. With
// one shared secret for every consumer, a consumer of one key could pass
// another key's drain gate by attesting for its consumers.
func TestSendersAttestOnlyForTheirKeys(t *testing.T) {
	const teamEnv = "REKEY_TEST_CONSUMER_SECRET_PAYMENTS"
	t.Setenv(teamEnv, otherSecret)
	cfg := DefaultConfig()
	cfg.Senders = []Sender{{Name: "payments", SecretEnv: teamEnv, Keys: "payments-*"}}
	w := newSenderWorld(t, cfg, func(k string) bool { return k == "payments-api" || k == "search-api" })
	st := w.st
	post := func(id, key string) *httptest.ResponseRecorder { return w.post(otherSecret, id, key, "billing-1") }
	outside, unknown := post("msg_1", "search-api"), post("msg_2", "nope-api")
	if outside.Code != http.StatusNotFound || outside.Body.String() != unknown.Body.String() {
		t.Fatalf("another team's key: %d %s; an unknown key: %d %s", outside.Code, outside.Body, unknown.Code, unknown.Body)
	}
	if got, _ := st.Consumers(t.Context(), "search-api"); len(got) != 0 {
		t.Fatalf("an attestation outside the sender's keys was recorded: %+v", got)
	}
	if w := post("msg_3", "payments-api"); w.Code != http.StatusAccepted {
		t.Fatalf("own key: %d %s", w.Code, w.Body)
	}
	got, err := st.Consumers(t.Context(), "payments-api")
	if err != nil || len(got) != 1 || got[0].Via != "consumers/payments" {
		t.Fatalf("recorded %+v (%v), want one consumer via consumers/payments", got, err)
	}
}

// Each sender needs a name, a secret and the keys it attests for; the
// top-level secret is optional once there are senders.
func TestSenderConfigErrorsNameTheField(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Keys = "[bad"
	cfg.Senders = []Sender{{Name: "Payments", SecretEnv: "X"}, {Name: "ops", Keys: "ops-*"}, {Name: "ops", SecretEnv: "Y", Keys: "*"}}
	err := cfg.Validate()
	for _, want := range []string{"keys: \"[bad\" is not a valid pattern", "senders[0].name", "senders[0].keys: required", "senders[1].secret", "senders[2].name: \"ops\" is used twice"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
	ok := DefaultConfig()
	ok.Senders = []Sender{{Name: "payments", SecretEnv: "X", Keys: "payments-*"}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("senders without a top-level secret: %v", err)
	}
	if err := DefaultConfig().Validate(); err == nil || !strings.Contains(err.Error(), "secret") {
		t.Fatalf("neither a secret nor senders: %v", err)
	}
}

// Each sender has its own budget and replay namespace: one team spending
// its attestations a minute leaves another's untouched, and a message id
// two teams happen to share is not a replay (review finding 12).
func TestSendersHaveTheirOwnBudgetAndReplayNamespace(t *testing.T) {
	const payEnv, searchEnv = "REKEY_TEST_CONSUMER_SECRET_PAY", "REKEY_TEST_CONSUMER_SECRET_SEARCH"
	t.Setenv(payEnv, secret)
	t.Setenv(searchEnv, otherSecret)
	cfg := DefaultConfig()
	cfg.RatePerMinute = 2
	cfg.Senders = []Sender{{Name: "payments", SecretEnv: payEnv, Keys: "payments-*"}, {Name: "search", SecretEnv: searchEnv, Keys: "search-*"}}
	w := newSenderWorld(t, cfg, func(string) bool { return true })
	post := func(sec, id, key string) int { return w.post(sec, id, key, "c-"+id).Code }
	for i, want := range []int{202, 202, 429} {
		if got := post(secret, "msg_p"+string(rune('0'+i)), "payments-api"); got != want {
			t.Fatalf("payments attestation %d: %d, want %d", i, got, want)
		}
	}
	// The same message id as payments' first, from search: its own.
	if got := post(otherSecret, "msg_p0", "search-api"); got != http.StatusAccepted {
		t.Fatalf("search, after payments spent its budget, with a message id payments used: %d, want 202", got)
	}
}

// Two senders with one secret: the signature would always name the first,
// and the second could never attest; refused at start, naming both.
func TestSendersNeedTheirOwnSecrets(t *testing.T) {
	t.Setenv("REKEY_TEST_CONSUMER_A", secret)
	t.Setenv("REKEY_TEST_CONSUMER_B", secret)
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "rekey.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := DefaultConfig()
	cfg.Senders = []Sender{{Name: "a", SecretEnv: "REKEY_TEST_CONSUMER_A", Keys: "a-*"}, {Name: "b", SecretEnv: "REKEY_TEST_CONSUMER_B", Keys: "b-*"}}
	_, err = New(cfg, "consumers", func(string) bool { return true }, credList{}, st, st, nil)
	if err == nil || !strings.Contains(err.Error(), "senders[1].secret and senders[0].secret use the same secret") {
		t.Fatalf("two senders with one secret: %v", err)
	}
}

// senderWorld is a consumer webhook built from cfg over a real store,
// whose clock stands still.
type senderWorld struct {
	t   *testing.T
	h   *Handler
	st  *sqlstore.Store
	now time.Time
}

func newSenderWorld(t *testing.T, cfg Config, known func(string) bool) *senderWorld {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "rekey.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	creds := credList{{Key: "x", Generation: 2, State: rotator.CredCurrent, Fingerprint: fpV2}}
	logger, _ := webhooktest.Logger()
	h, err := New(cfg, "consumers", known, creds, st, st, logger)
	if err != nil {
		t.Fatal(err)
	}
	w := &senderWorld{t: t, h: h, st: st, now: time.Now().Truncate(time.Millisecond)}
	h.now = func() time.Time { return w.now }
	return w
}

// post attests generation 2 of key for consumer, signed with sec.
func (w *senderWorld) post(sec, id, key, consumer string) *httptest.ResponseRecorder {
	w.t.Helper()
	k, err := stdwebhooks.ParseKey(sec)
	if err != nil {
		w.t.Fatal(err)
	}
	body := `{"key":"` + key + `","consumer":"` + consumer + `","generation":2}`
	r := httptest.NewRequest(http.MethodPost, "/v1/consumers/attest", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	k.SetHeaders(r.Header, id, w.now, []byte(body))
	rec := httptest.NewRecorder()
	w.h.ServeHTTP(rec, r)
	return rec
}
