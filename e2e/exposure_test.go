package e2e

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/internal/stdwebhooks"
	"github.com/rekeyhq/rekey/store/sqlstore"
	"github.com/rekeyhq/rekey/testing/kubeadapt"
)

const exposureSecret = "e2e-exposure-signing-secret-0123456789"

// exposureTemplate: the http issuer against a Kubeadapt-style server, the
// file sink, and the generic exposure webhook.
const exposureTemplate = `
daemon:
  listen: 127.0.0.1:0
  address_file: {{.W.AddressFile}}
  admin_listen: 127.0.0.1:0
  admin_address_file: {{.W.Dir}}/rekey.admin.addr
  admin_token_file: {{.W.Dir}}/admin-token
  schedule: "@every 1h"
  poll_interval: 50ms
  retry_base: 100ms
  retry_max: 1s
  log_level: debug
store: {type: sqlite, path: {{.W.Dir}}/rekey.db}
issuers:
  - name: ka
    type: http
    base_url: {{.KA}}
    auth: {prefix: "Bearer ", token_file: {{.W.Dir}}/ka-admin-token}
    mint:
      path: /admin/v1/api-keys
      body: '{"name": {{"{{"}}json .Name{{"}}"}}, "scopes": {{"{{"}}json .Params.scopes{{"}}"}}}'
      success: [201]
      id_path: id
      secret_path: secret
    revoke:
      path: /admin/v1/api-keys/{{"{{"}}pathescape .ID{{"}}"}}
      success: [204]
      already_revoked: [409]
    list:
      path: /admin/v1/api-keys?name={{"{{"}}urlquery .Name{{"}}"}}
      items_path: data
      id_path: id
      name_path: name
      status_path: status
      revoked_statuses: [revoked]
    verify:
      url: /v1/clusters
      expect: [200]
sinks:
  - {name: files, type: file, dir: {{.W.Dir}}/secrets}
notifiers:
  - {name: log, type: log}
  - {name: hook, type: webhook, url: {{.W.HookURL}}, secret_file: {{.W.Dir}}/webhook-secret}
webhooks:
  - {name: leaks, type: exposure, secret_file: {{.W.Dir}}/exposure-secret}
defaults:
  verify: true
  drain: {quiet_period: 0s}
keys:
  - name: api
    issuer: ka
    owners: [alice@example.com]
    params: {scopes: [clusters:read]}
    sinks: [{sink: files}]
`

type kaWorld struct {
	*world
	ka *kubeadapt.Server
}

func newKAWorld(t *testing.T) *kaWorld {
	t.Helper()
	ka := kubeadapt.New(kubeadapt.Options{AdminToken: "ka-admin-token-for-e2e-tests-0001"})
	if err := ka.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ka.Close() })
	w := newWorldFrom(t, exposureTemplate, func(w *world) any {
		return map[string]any{"W": w, "KA": ka.URL()}
	})
	writeFile(t, filepath.Join(w.dir, "ka-admin-token"), ka.AdminToken())
	writeFile(t, filepath.Join(w.dir, "exposure-secret"), exposureSecret)
	addSecret(ka.AdminToken())
	return &kaWorld{world: w, ka: ka}
}

// status of a data API call with key.
func (k *kaWorld) status(key string) int {
	req, _ := http.NewRequest("GET", k.ka.URL()+"/v1/clusters", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		k.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// report posts a signed generic exposure report of token.
func (w *world) report(id, token string) (int, map[string]any) {
	w.t.Helper()
	body, _ := json.Marshal(map[string]string{"token": token, "source": "e2e", "url": "https://paste.example.com/" + id})
	resp, err := w.postExposure(id, body)
	if err != nil {
		return 0, nil // the daemon died before answering (crash tests); a sender would retry
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	b, _ := json.Marshal(out)
	w.record(b)
	return resp.StatusCode, out
}

// postExposure posts body to the generic exposure webhook, signed as the
// Standard Webhooks message id sent now.
func (w *world) postExposure(id string, body []byte) (*http.Response, error) {
	w.t.Helper()
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	sig, err := stdwebhooks.Sign(exposureSecret, id, ts, body)
	if err != nil {
		w.t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", "http://"+w.Addr()+"/v1/events/exposure", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", ts)
	req.Header.Set("webhook-signature", sig)
	return http.DefaultClient.Do(req)
}

// A signed exposure report of the live key: the old key gets 401 from the
// API, the new key is delivered and works, and the time from the report's
// receipt to the revoke call is measured.
func TestLeakToRevoke(t *testing.T) {
	t.Parallel()
	k := newKAWorld(t)
	d := k.start()
	k.bootstrap("api")
	leaked := k.sink("api").Current.Value
	addSecret(leaked)
	if k.status(leaked) != 200 {
		t.Fatal("the live key does not work before the leak")
	}
	code, body := k.report("leak-1", leaked)
	if code != 202 || body["known"] != true {
		t.Fatalf("report: %d %v", code, body)
	}
	// Replayed delivery (same id, same timestamp and signature would be a
	// byte-identical replay; a retry re-signs) does not rotate twice.
	code2, body2 := k.report("leak-1", leaked)
	if code2 >= 300 && code2 != 409 || code2 < 300 && body2["duplicate"] != true {
		t.Fatalf("repeated report: %d %v", code2, body2)
	}
	r := k.waitEmergency(t)
	if r.Phase != "done" {
		t.Fatalf("emergency rotation ended %s: %s", r.Phase, r.LastError)
	}
	fresh := k.sink("api").Current.Value
	addSecret(fresh)
	if got := k.status(leaked); got != 401 {
		t.Fatalf("leaked key answers %d after revocation, want 401", got)
	}
	if got := k.status(fresh); got != 200 {
		t.Fatalf("new key answers %d, want 200", got)
	}
	d.stop()
	lat := k.revokeLatency(t, "exposure/leak-1")
	t.Logf("report received → revoke issued: %s", lat)
	k.scanForSecrets()
}

// Kill -9 right after the report is acknowledged: after a restart the
// revocation still happens (invariant 5).
func TestKillRightAfterReportAck(t *testing.T) {
	t.Parallel()
	for name, env := range map[string][]string{
		"killed from outside on the 202": nil,
		"killed before the revoke call":  {"REKEY_FAILPOINT=revoking:before"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			k := newKAWorld(t)
			d := k.start()
			k.bootstrap("api")
			d.stop()
			leaked := k.sink("api").Current.Value
			addSecret(leaked)
			d = k.start(env...)
			code, _ := k.report("leak-kill", leaked)
			if env == nil {
				_ = syscall.Kill(d.cmd.Process.Pid, syscall.SIGKILL)
				<-d.done
				if code != 202 {
					t.Fatalf("report: %d", code)
				}
			} else if !d.waitKilled(t, 20*time.Second) {
				t.Fatal("failpoint did not kill the daemon")
			}
			// With the failpoint the daemon may die before its 202 reaches
			// the sender: the report was recorded first, so the revoke
			// still happens after the restart (and a sender's retry would
			// be a duplicate).
			d = k.start()
			r := k.waitEmergency(t)
			d.stop()
			if r.Phase != "done" || k.status(leaked) != 401 {
				t.Fatalf("after restart: rotation %s, leaked key answers %d", r.Phase, k.status(leaked))
			}
			addSecret(k.sink("api").Current.Value)
			k.scanForSecrets()
		})
	}
}

// A report of a token nobody knows is accepted (2xx), recorded and
// notified — never an error to the sender; bad signatures change nothing.
func TestExposureReportsRejectedOrHarmless(t *testing.T) {
	t.Parallel()
	k := newKAWorld(t)
	k.start()
	k.bootstrap("api")
	if code, body := k.report("unknown-1", "ka_live_"+strings.Repeat("Z", 32)); code != 202 || body["known"] != false {
		t.Fatalf("unknown token: %d %v", code, body)
	}
	req, _ := http.NewRequest("POST", "http://"+k.Addr()+"/v1/events/exposure", strings.NewReader(`{"token":"x"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", "forged")
	req.Header.Set("webhook-timestamp", strconv.FormatInt(time.Now().Unix(), 10))
	req.Header.Set("webhook-signature", "v1,AAAA")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("forged report: %d", resp.StatusCode)
	}
	var list struct {
		Rotations []rotationView `json:"rotations"`
	}
	k.api("GET", "/v1/rotations?key=api", nil, &list)
	if len(list.Rotations) != 1 { // the bootstrap only
		t.Fatalf("%d rotations; a rejected or unknown report started one", len(list.Rotations))
	}
}

func (k *kaWorld) waitEmergency(t *testing.T) rotationView {
	t.Helper()
	deadline := patient(30 * time.Second)
	for time.Now().Before(deadline) {
		var list struct {
			Rotations []rotationView `json:"rotations"`
		}
		k.api("GET", "/v1/rotations?key=api", nil, &list)
		for _, r := range list.Rotations {
			if r.Trigger == "exposure" {
				return k.waitRotation(r.ID, 30*time.Second)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("no emergency rotation")
	return rotationView{}
}

// revokeLatency reads, from the store, the time from the report's receipt
// (recorded before the 2xx) to the audit record of the revocation.
func (w *world) revokeLatency(t *testing.T, eventID string) time.Duration {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(w.dir, "rekey.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var received, result string
	if err := db.QueryRow(`SELECT received_at, result FROM inbound_events WHERE id = ?`, eventID).Scan(&received, &result); err != nil {
		t.Fatal(err)
	}
	var res struct {
		RotationID string `json:"RotationID"`
	}
	_ = json.Unmarshal([]byte(result), &res)
	var revoked string
	if err := db.QueryRow(`SELECT at FROM audit_events WHERE rotation_id = ? AND action = 'revoked' ORDER BY seq LIMIT 1`, res.RotationID).Scan(&revoked); err != nil {
		t.Fatalf("no revoke audited for %s: %v", res.RotationID, err)
	}
	a, _ := time.Parse(time.RFC3339Nano, received)
	b, _ := time.Parse(time.RFC3339Nano, revoked)
	_ = sqlstore.TimeText
	_ = os.Getpid
	_ = fmt.Sprint
	return b.Sub(a)
}
