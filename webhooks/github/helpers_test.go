package github

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/webhooks/internal/webhooktest"
)

const (
	token        = "ka_live_LEAKEDleakedLEAKEDleaked012345"
	unknownToken = "ka_live_UNKNOWNunknownUNKNOWNunknown0"
	alertSecret  = "ka_live_ALERTalertALERTalertALERT0123"
	hubSecret    = "a-github-webhook-secret-of-32-chars"
	ghToken      = "ghp_TESTtokenTESTtokenTESTtoken012345"
	keyID        = "bcb53661c06b4728e59d897fb6165d5c9cda0fd9cdf9d09ead458168deb7518c"
)

var t0 = time.Unix(1_750_000_000, 0)

// signer is a GitHub secret scanning signing key.
type signer struct {
	id   string
	priv *ecdsa.PrivateKey
}

func newSigner(t testing.TB, id string) signer {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signer{id: id, priv: priv}
}

// pem is the public key as GitHub publishes it.
func (s signer) pem(t testing.TB) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&s.priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// sign signs exactly as GitHub does: ECDSA over SHA-256 of the raw body,
// ASN.1 DER, base64.
func (s signer) sign(t testing.TB, body []byte) string {
	t.Helper()
	digest := sha256.Sum256(body)
	sig, err := ecdsa.SignASN1(rand.Reader, s.priv, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// keyServer publishes signers' keys at /meta/public_keys/secret_scanning.
type keyServer struct {
	*httptest.Server
	mu      sync.Mutex
	doc     string
	status  int
	fetches int
	auth    []string
}

func newKeyServer(t testing.TB, signers ...signer) *keyServer {
	t.Helper()
	ks := &keyServer{status: http.StatusOK}
	ks.publish(t, signers...)
	ks.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ks.mu.Lock()
		defer ks.mu.Unlock()
		ks.fetches++
		ks.auth = append(ks.auth, r.Header.Get("Authorization"))
		if ks.status != http.StatusOK {
			w.WriteHeader(ks.status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(ks.doc))
	}))
	t.Cleanup(ks.Close)
	return ks
}

func (ks *keyServer) publish(t testing.TB, signers ...signer) {
	type entry struct {
		KeyIdentifier string `json:"key_identifier"`
		Key           string `json:"key"`
		IsCurrent     bool   `json:"is_current"`
	}
	var doc struct {
		PublicKeys []entry `json:"public_keys"`
	}
	for i, s := range signers {
		doc.PublicKeys = append(doc.PublicKeys, entry{KeyIdentifier: s.id, Key: s.pem(t), IsCurrent: i == 0})
	}
	b, _ := json.Marshal(doc)
	ks.mu.Lock()
	ks.doc = string(b)
	ks.mu.Unlock()
}

func (ks *keyServer) setStatus(status int) {
	ks.mu.Lock()
	ks.status = status
	ks.mu.Unlock()
}

func (ks *keyServer) count() int {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.fetches
}

// apiServer is a GitHub REST API serving secret scanning alerts.
type apiServer struct {
	*httptest.Server
	mu     sync.Mutex
	alerts map[string]string // "/repos/o/r/secret-scanning/alerts/n" → JSON
	status int
	calls  int
}

func newAPIServer(t testing.TB) *apiServer {
	t.Helper()
	a := &apiServer{alerts: map[string]string{}, status: http.StatusOK}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.calls++
		if r.Header.Get("Authorization") != "Bearer "+ghToken || r.Header.Get("X-GitHub-Api-Version") == "" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"message":"Bad credentials"}`))
			return
		}
		doc, ok := a.alerts[r.URL.Path]
		if a.status != http.StatusOK || !ok {
			st := a.status
			if st == http.StatusOK {
				st = http.StatusNotFound
			}
			w.WriteHeader(st)
			_, _ = w.Write([]byte(`{"message":"Not Found","documentation_url":"https://docs.github.com/rest"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(doc))
	}))
	t.Cleanup(a.Close)
	return a
}

// addAlert serves alert n of owner/repo with secret.
func (a *apiServer) addAlert(owner, repo string, n int, secret string) {
	doc, _ := json.Marshal(map[string]any{
		"number": n, "state": "open", "secret_type": "kubeadapt_api_key", "secret": secret,
		"html_url":                 "https://github.com/" + owner + "/" + repo + "/security/secret-scanning/" + itoa(n),
		"secret_type_display_name": "Kubeadapt API key",
	})
	a.mu.Lock()
	a.alerts["/repos/"+owner+"/"+repo+"/secret-scanning/alerts/"+itoa(n)] = string(doc)
	a.mu.Unlock()
}

func (a *apiServer) setStatus(status int) {
	a.mu.Lock()
	a.status = status
	a.mu.Unlock()
}

func (a *apiServer) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

type fixture struct {
	h      *Handler
	intake *webhooktest.Intake
	guard  *webhooktest.Guard
	logs   *webhooktest.Buffer
	keys   *keyServer
	api    *apiServer
	gh     signer
	now    time.Time
}

// newFixture builds a handler with both formats on, against local key and
// API servers. edit may change the config.
func newFixture(t testing.TB, edit func(*Config)) *fixture {
	t.Helper()
	t.Setenv("REKEY_TEST_GH_SECRET", hubSecret)
	t.Setenv("REKEY_TEST_GH_TOKEN", ghToken)
	f := &fixture{
		intake: &webhooktest.Intake{KnownFingerprints: map[string]string{
			rotator.Fingerprint(token): "kubeadapt-prod", rotator.Fingerprint(alertSecret): "kubeadapt-ci",
		}},
		guard: &webhooktest.Guard{},
		gh:    newSigner(t, keyID),
		now:   t0,
	}
	f.keys = newKeyServer(t, f.gh)
	f.api = newAPIServer(t)
	cfg := DefaultConfig()
	cfg.KeysURL = f.keys.URL + "/meta/public_keys/secret_scanning"
	cfg.Alert = true
	cfg.SecretEnv = "REKEY_TEST_GH_SECRET"
	cfg.TokenEnv = "REKEY_TEST_GH_TOKEN"
	cfg.APIBaseURL = f.api.URL
	if edit != nil {
		edit(&cfg)
	}
	logger, logs := webhooktest.Logger()
	f.logs = logs
	h, err := New(cfg, f.intake, f.guard, logger)
	if err != nil {
		t.Fatal(err)
	}
	h.now = func() time.Time { return f.now }
	f.h = h
	return f
}

func (f *fixture) serve(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

// partnerRequest is a partner POST signed by s.
func partnerRequest(t testing.TB, s signer, body string) *http.Request {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/v1/events/exposure/github", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set(headerKeyID, s.id)
	r.Header.Set(headerKeySignature, s.sign(t, []byte(body)))
	return r
}

// alertRequest is a webhook delivery signed with secret.
func alertRequest(secret, event, delivery, body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/v1/events/exposure/github", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set(headerEvent, event)
	r.Header.Set(headerDelivery, delivery)
	r.Header.Set(headerHubSignature, hubSign(secret, body))
	return r
}

func hubSign(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// alertPayload is a secret_scanning_alert payload as GitHub sends it
// (abridged): no secret in it.
func alertPayload(action, owner, repo string, n int) string {
	b, _ := json.Marshal(map[string]any{
		"action": action,
		"alert": map[string]any{
			"number": n, "secret_type": "kubeadapt_api_key", "state": "open",
			"html_url":   "https://github.com/" + owner + "/" + repo + "/security/secret-scanning/" + itoa(n),
			"created_at": "2025-06-15T12:00:00Z",
		},
		"repository": map[string]any{
			"id": 1296269, "name": repo, "full_name": owner + "/" + repo, "private": true,
			"owner": map[string]any{"login": owner, "id": 1},
		},
		"sender": map[string]any{"login": "octocat"},
	})
	return string(b)
}

// noLeak checks that no token or secret appears in out or the logs.
func (f *fixture) noLeak(t *testing.T, out string) {
	t.Helper()
	for _, s := range []string{token, unknownToken, alertSecret, hubSecret, ghToken} {
		webhooktest.AssertNoLeak(t, s, map[string]string{"response": out, "logs": f.logs.String()})
	}
}
