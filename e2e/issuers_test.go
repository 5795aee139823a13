package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/testing/kubeadapt"
)

// The three real issuers (http, manual, awsiam) end to end through the
// rekey binary: this file holds the configuration, the helpers shared by
// issuers_*_test.go, and the http issuer's tests against the Kubeadapt-style
// server, configured from the shipped examples/kubeadapt-issuer.yaml.

// issuerCfg is a configuration with one issuer (Issuer, a YAML list item
// inserted as data so that the issuer's own templates are not executed
// here) and one key delivered to the file sink. Drain and watch take no
// time: these tests are about the issuer.
const issuerCfg = `
daemon:
  listen: 127.0.0.1:0
  address_file: {{.Dir}}/rekey.addr
  admin_listen: 127.0.0.1:0
  admin_address_file: {{.Dir}}/rekey.admin.addr
  admin_token_file: {{.Dir}}/admin-token
  schedule: "@every 1h"
  poll_interval: 100ms
  lease_ttl: 2s # a restarted daemon (a new instance) resumes its rotations after the lease runs out
  retry_base: 100ms
  retry_max: 1s
  log_level: debug
store:
  type: sqlite
  path: {{.Dir}}/rekey.db
issuers:
{{.Issuer}}
sinks:
  - name: files
    type: file
    dir: {{.Dir}}/secrets
notifiers:
  - name: log
    type: log
  - name: hook
    type: webhook
    url: {{.Hook}}
    secret_file: {{.Dir}}/webhook-secret
    max_attempts: 3
traffic:
  - name: fixed
    type: fixed
defaults:
  verify: true
  drain:
    source: fixed
    quiet_period: 0s
    max_wait: 1h
    poll_interval: 100ms
  watch:
    period: 0s
    poll_interval: 100ms
keys:
  - name: {{.Key}}
    issuer: {{.IssuerName}}
    owners: [alice@example.com]
    params:
      scopes: [clusters:read]
    sinks:
      - sink: files
`

type issuerParams struct {
	Dir, Hook       string
	Key, IssuerName string
	Issuer          string
}

// newIssuerWorld makes a world for key bound to the issuer named name,
// whose YAML list item issuer renders from the world's directory.
func newIssuerWorld(t *testing.T, key, name string, issuer func(dir string) string) *issuerWorld {
	t.Helper()
	return &issuerWorld{newWorldFrom(t, issuerCfg, func(w *world) any {
		return issuerParams{Dir: w.Dir(), Hook: w.HookURL(), Key: key, IssuerName: name, Issuer: issuer(w.Dir())}
	})}
}

// issuerWorld is a world with the helpers of the issuer tests.
type issuerWorld struct{ *world }

// exampleHTTPIssuer is the shipped example issuer
// (examples/kubeadapt-issuer.yaml) pointed at a local server, with the admin token read from tokenFile and
// the verify probe relaxed to "anything but 401". Each edit must apply
// exactly once, so that a change to the example fails here instead of
// silently testing something else.
func exampleHTTPIssuer(t *testing.T, baseURL, tokenFile string) string {
	t.Helper()
	b, err := os.ReadFile("../examples/kubeadapt-issuer.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, item, ok := strings.Cut(string(b), "\nissuers:\n")
	if !ok {
		t.Fatal("examples/kubeadapt-issuer.yaml: no issuers: list")
	}
	for _, r := range [][2]string{
		{"base_url: https://api.kubeadapt.io", "base_url: " + baseURL},
		{"      token_env: KA_ADMIN_TOKEN", "      token_file: " + tokenFile},
		{"      expect: [200] ", "      not: [401] "},
	} {
		if n := strings.Count(item, r[0]); n != 1 {
			t.Fatalf("examples/kubeadapt-issuer.yaml: %q occurs %d times, want 1", r[0], n)
		}
		item = strings.Replace(item, r[0], r[1], 1)
	}
	return item
}

// idempotentIssuer turns on the idempotency key header that
// examples/kubeadapt-issuer.yaml documents commented out.
func idempotentIssuer(t *testing.T, item string) string {
	t.Helper()
	const off = "      # idempotency_key_header: Idempotency-Key\n"
	if n := strings.Count(item, off); n != 1 {
		t.Fatalf("examples/kubeadapt-issuer.yaml: %q occurs %d times, want 1", off, n)
	}
	return strings.Replace(item, off, "      idempotency_key_header: Idempotency-Key\n", 1)
}

// startIssuerKubeadapt starts the Kubeadapt-style server in-process with a
// fresh admin token, registered as a secret for the scan. It fails the test
// when the server cannot listen.
func startIssuerKubeadapt(t *testing.T) *kubeadapt.Server {
	t.Helper()
	tok := "ka-admin-" + issuerRandomHex(t, 16)
	addSecret(tok)
	srv := kubeadapt.New(kubeadapt.Options{AdminToken: tok})
	if err := srv.Start("127.0.0.1:0"); err != nil {
		t.Fatalf("kubeadapt server: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

func issuerRandomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// kaTokenFile holds the Kubeadapt admin token in a world's directory.
const kaTokenFile = "ka-admin-token"

// newHTTPIssuerWorld starts a Kubeadapt-style server and a world whose key
// uses the example http issuer against it.
func newHTTPIssuerWorld(t *testing.T, key string) (*issuerWorld, *kubeadapt.Server) {
	t.Helper()
	srv := startIssuerKubeadapt(t)
	w := newIssuerWorld(t, key, "kubeadapt", func(dir string) string {
		return exampleHTTPIssuer(t, srv.URL(), filepath.Join(dir, kaTokenFile))
	})
	writeFile(t, filepath.Join(w.Dir(), kaTokenFile), srv.AdminToken())
	return w, srv
}

// kaDataStatus calls the data API (GET /v1/clusters) with secret.
func kaDataStatus(t *testing.T, srv *kubeadapt.Server, secret string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL()+"/v1/clusters", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// kaKeysNamed returns the server's keys named exactly name, or starting with
// name when prefix.
func kaKeysNamed(srv *kubeadapt.Server, name string, prefix bool) (active, revoked []kubeadapt.KeyInfo) {
	for _, k := range srv.Keys() {
		if k.Name != name && !(prefix && strings.HasPrefix(k.Name, name)) {
			continue
		}
		if k.Status == kubeadapt.StatusActive {
			active = append(active, k)
		} else {
			revoked = append(revoked, k)
		}
	}
	return active, revoked
}

// issuerRotation is the admin API's view of a rotation, with the fields
// the harness's rotationView leaves out.
type issuerRotation struct {
	rotationView
	HoldDetail  string `json:"hold_detail"`
	Attempts    int    `json:"attempts"`
	ErrorReason string `json:"error_reason"`
	UpdatedAt   string `json:"updated_at"`
}

func (w *issuerWorld) rotation(id string) issuerRotation {
	w.t.Helper()
	var got struct {
		Rotation issuerRotation `json:"rotation"`
	}
	if code := w.api("GET", "/v1/rotations/"+id, nil, &got); code != 200 {
		w.t.Fatalf("GET rotation %s: %d", id, code)
	}
	return got.Rotation
}

// waitFor polls the rotation until ok accepts it.
func (w *issuerWorld) waitFor(id, what string, within time.Duration, ok func(r issuerRotation) bool) issuerRotation {
	w.t.Helper()
	deadline := patient(within)
	for {
		r := w.rotation(id)
		if ok(r) {
			return r
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("rotation %s: not %s within %s: %+v", id, what, within, r)
		}
		w.collectSecrets()
		time.Sleep(50 * time.Millisecond)
	}
}

// activeRotation waits for the key's active rotation (e.g. the automatic
// bootstrap) and returns its id.
func (w *issuerWorld) activeRotation(key string, within time.Duration) string {
	w.t.Helper()
	deadline := patient(within)
	for {
		var list struct {
			Rotations []rotationView `json:"rotations"`
		}
		w.api("GET", "/v1/rotations?key="+key+"&active=true", nil, &list)
		if len(list.Rotations) > 0 {
			return list.Rotations[0].ID
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("no active rotation of %s within %s", key, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rotate starts a staged rotation with the CLI and returns its id.
func (w *issuerWorld) rotate(key string) string {
	w.t.Helper()
	out, code := w.cliStdout("", "rotate", key, "--reason", "issuer e2e", "-o", "json")
	if code != 0 {
		w.t.Fatalf("rotate %s: exit %d: %s", key, code, out)
	}
	var r rotationView
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		w.t.Fatalf("rotate %s: %v: %s", key, err, out)
	}
	return r.ID
}

// auditOf returns the audit events of a rotation.
func (w *issuerWorld) auditOf(id string) []auditEvent {
	w.t.Helper()
	var a struct {
		Events []auditEvent `json:"events"`
	}
	if code := w.api("GET", "/v1/audit?rotation="+id, nil, &a); code != 200 {
		w.t.Fatalf("audit of %s: %d", id, code)
	}
	return a.Events
}

func auditActions(evs []auditEvent) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Action)
	}
	return out
}

// keyIssuerID returns the issuer id and generation of the key's current
// credential, as rekey records them.
func (w *issuerWorld) keyIssuerID(key string) (string, int) {
	w.t.Helper()
	var keys struct {
		Keys []struct {
			Name       string `json:"name"`
			Generation int    `json:"generation"`
			IssuerID   string `json:"issuer_id"`
		} `json:"keys"`
	}
	w.api("GET", "/v1/keys", nil, &keys)
	for _, k := range keys.Keys {
		if k.Name == key {
			return k.IssuerID, k.Generation
		}
	}
	w.t.Fatalf("key %s not listed", key)
	return "", 0
}

// notified returns the messages of the webhook notifications received.
func (w *issuerWorld) notified() []string {
	bodies, _ := w.notifications()
	var out []string
	for _, b := range bodies {
		var n struct {
			Kind    string `json:"kind"`
			Message string `json:"message"`
		}
		if json.Unmarshal(b, &n) == nil {
			out = append(out, n.Kind+": "+n.Message)
		}
	}
	return out
}

// waitNotified waits until a webhook notification contains every want.
func (w *issuerWorld) waitNotified(within time.Duration, want ...string) string {
	w.t.Helper()
	deadline := patient(within)
	for {
		for _, m := range w.notified() {
			if hasAll(m, want...) {
				return m
			}
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("no notification containing %q within %s; got:\n%s", want, within, strings.Join(w.notified(), "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func hasAll(s string, subs ...string) bool {
	return !slices.ContainsFunc(subs, func(sub string) bool { return !strings.Contains(s, sub) })
}
