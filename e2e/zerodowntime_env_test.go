package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	vaultapi "github.com/hashicorp/vault/api"

	"github.com/rekeyhq/rekey/testing/consumer"
	"github.com/rekeyhq/rekey/testing/kubeadapt"
	"github.com/rekeyhq/rekey/testing/testenv"
)

// The zero-downtime suite runs the whole chain with real processes: the
// Kubeadapt-style API (in the test process), a real Prometheus scraping its
// per-key counters every 200 ms, the rekey binary minting and revoking keys
// there through the http issuer, delivering them to the file sink, a real
// Vault (KV v2) and Secrets Manager (moto), and gating the revoke on a
// PromQL query; consumers are rekey-consumer processes that call the API
// with the key they read from one sink.

// zdKey is the key every zero-downtime test rotates; its generations are
// named api-v1, api-v2 at the issuer.
const zdKey = "api"

// zdQuery is the drain gate: the 401 rate of the old key, plus the 401
// rate of requests whose key the server could not identify at all (a
// consumer with a truncated or mangled copy of the key cannot be
// attributed to a key, so it holds every gate — examples/traffic/
// kubeadapt.yaml's match: [old_id, unknown]). It is a real zero, not an
// empty answer, once Prometheus has seen the old key: a code="401" series
// only exists after the first 401, so its rate alone would be empty while
// nobody fails; "or … * 0" turns the old key's other series into a zero.
// Before the old key was ever scraped it is empty, which the source reads
// as an error, never as zero.
const zdQuery = `(sum(rate(kubeadapt_requests_total{key_id="<<promql .OldID}}",code="401"}[<<.Window}}]))` +
	` or sum(rate(kubeadapt_requests_total{key_id="<<promql .OldID}}"}[<<.Window}}])) * 0)` +
	` + (sum(rate(kubeadapt_requests_total{key_id="unknown",code="401"}[<<.Window}}])) or vector(0))`

// zdTemplate is the configuration; "<<" stands for the "{{" of the
// issuer's and the source's own templates, which must pass through this
// one unexecuted.
const zdTemplate = `
daemon:
  listen: 127.0.0.1:0
  address_file: {{.W.AddressFile}}
  admin_listen: 127.0.0.1:0
  admin_address_file: {{.W.Dir}}/rekey.admin.addr
  admin_token_file: {{.W.Dir}}/admin-token
  schedule: "@every 1h"
  poll_interval: 100ms
  lease_ttl: 2s # a restarted daemon (a new instance) resumes its rotations after the lease runs out
  retry_base: 100ms
  retry_max: 1s
  log_level: debug
store:
  type: sqlite
  path: {{.W.Dir}}/rekey.db
issuers:
  - name: kubeadapt
    type: http
    base_url: {{.KA}}
    timeout: 5s
    auth:
      prefix: "Bearer "
      token_file: {{.W.Dir}}/ka-admin-token
    mint:
      path: /admin/v1/api-keys
      body: '{"name": <<json .Name}}, "scopes": <<json .Params.scopes}}, "allowed_cluster_ids": null}'
      success: [201]
      id_path: id
      secret_path: secret
    revoke:
      method: DELETE
      path: /admin/v1/api-keys/<<pathescape .ID}}
      success: [204]
      already_revoked: [409]
    list:
      path: /admin/v1/api-keys?name=<<urlquery .Name}}
      items_path: data
      id_path: id
      name_path: name
      status_path: status
      revoked_statuses: [revoked]
    verify:
      url: /v1/clusters
      expect: [200]
sinks:
  - name: files
    type: file
    dir: {{.W.Dir}}/secrets
{{- if .Vault}}
  - name: vault
    type: vault
    address: {{.Vault}}
    auth:
      method: token
      token_file: {{.W.Dir}}/vault-token
    timeout: 5s
{{- end}}
{{- if .Moto}}
  - name: aws
    type: awssm
    region: us-east-1
    endpoint: {{.Moto}}
    recovery_window_days: 0
    timeout: 5s
{{- end}}
notifiers:
  - name: log
    type: log
  - name: hook
    type: webhook
    url: {{.W.HookURL}}
    secret_file: {{.W.Dir}}/webhook-secret
    max_attempts: 3
{{- if .Gate}}
{{.Gate}}
{{- else}}
traffic:
  - name: prom
    type: prometheus
    url: {{.Prom}}
    window: 2s
    timeout: 1s
    query: '{{.Query}}'
{{- end}}
defaults:
  policies:
    max_age: 90d
  verify: true
  drain:
{{- if .GateDrain}}
{{.GateDrain}}
{{- else}}
    source: prom
{{- end}}
    quiet_period: {{.Quiet}}
    max_wait: {{.MaxWait}}
    poll_interval: 200ms
  watch:
    period: {{.Watch}}
    poll_interval: 200ms
keys:
  - name: ` + zdKey + `
    issuer: kubeadapt
    owners: [alice@example.com]
    params:
      scopes: [clusters:read]
    sinks:
      - sink: files
        path: ` + zdKey + `
{{- if .Vault}}
      - sink: vault
        path: team/` + zdKey + `
{{- end}}
{{- if .Moto}}
      - sink: aws
        path: team/` + zdKey + `
{{- end}}
`

// zdOptions chooses the drain timings and the sinks besides the file sink.
type zdOptions struct {
	Quiet, MaxWait, Watch time.Duration
	Vault, AWS            bool
	// Gate, when set, replaces the prom source and the drain source.
	Gate *zdGate
}

// zdGate is a drain gate configuration: the traffic and webhooks
// sections (a template over the stack: .KA, .Prom, .W) and the lines of
// defaults.drain that choose the sources.
type zdGate struct {
	Sections string
	Drain    string
	// Attest: the gate reads consumer attestations; consumers started
	// with attest report to the daemon.
	Attest bool
}

// zdStack is one test's servers and daemon.
type zdStack struct {
	t       *testing.T
	w       *world
	opts    zdOptions
	ka      *kubeadapt.Server
	prom    *testenv.PrometheusServer
	vault   *testenv.VaultServer
	moto    *testenv.MotoServer
	vc      *vaultapi.Client
	smc     *sm.Client
	d       *daemon
	started time.Time
}

// newZDStack starts the Kubeadapt-style server, Prometheus scraping it,
// Vault and moto as asked, and the rekey daemon; it returns once
// generation 1 of the key is current in every sink and Prometheus scrapes
// the server. Every server that cannot start fails the test.
func newZDStack(t *testing.T, o zdOptions) *zdStack {
	t.Helper()
	s := &zdStack{t: t, opts: o, started: time.Now()}
	s.ka = kubeadapt.New(kubeadapt.Options{})
	if err := s.ka.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.ka.Close() })
	kaAddr := strings.TrimPrefix(s.ka.URL(), "http://")
	s.prom = testenv.Prometheus(t, testenv.PromOptions{Targets: []string{kaAddr}, ScrapeInterval: 200 * time.Millisecond, Job: "kubeadapt"})
	if o.Vault {
		s.vault = testenv.Vault(t)
		vc, err := consumer.NewVaultClient(s.vault.Addr, s.vault.Token)
		if err != nil {
			t.Fatal(err)
		}
		s.vc = vc
	}
	if o.AWS {
		s.moto = testenv.Moto(t)
		s.smc = consumer.NewSecretsManagerClient(s.moto.Endpoint, "us-east-1", "test", "test")
	}
	tmpl := strings.ReplaceAll(zdTemplate, "<<", `{{"{{"}}`)
	s.w = newWorldFrom(t, tmpl, func(w *world) any {
		d := map[string]any{"W": w, "KA": s.ka.URL(), "Prom": s.prom.Addr, "Query": strings.ReplaceAll(zdQuery, "<<", "{{"),
			"Quiet": o.Quiet.String(), "MaxWait": o.MaxWait.String(), "Watch": o.Watch.String(), "Vault": "", "Moto": "", "Gate": "", "GateDrain": ""}
		if o.Gate != nil {
			d["Gate"] = expandGate(t, o.Gate.Sections, map[string]any{"W": w, "KA": s.ka.URL(), "Prom": s.prom.Addr})
			d["GateDrain"] = o.Gate.Drain
		}
		if s.vault != nil {
			d["Vault"] = s.vault.Addr
		}
		if s.moto != nil {
			d["Moto"] = s.moto.Endpoint
		}
		return d
	})
	writeFile(t, filepath.Join(s.w.dir, "ka-admin-token"), s.ka.AdminToken())
	writeFile(t, filepath.Join(s.w.dir, "consumer-secret"), zdAttestSecret)
	if s.vault != nil {
		writeFile(t, filepath.Join(s.w.dir, "vault-token"), s.vault.Token)
	}
	s.d = s.w.start(s.env()...)
	s.w.bootstrap(zdKey)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.prom.WaitUp(ctx); err != nil {
		t.Fatal(err)
	}
	old := s.kaKey(zdKey + "-v1")
	s.collect()
	t.Logf("stack ready in %s: kubeadapt %s, prometheus %s, generation 1 is %s", time.Since(s.started).Round(time.Millisecond), s.ka.URL(), s.prom.Addr, old.ID)
	return s
}

// env is the daemon's and the consumers' environment.
func (s *zdStack) env() []string {
	var env []string
	if s.moto != nil {
		env = append(env, s.moto.Env()...)
	}
	if s.vault != nil {
		env = append(env, s.vault.Env()...)
	}
	return env
}

// kaKey returns the issuer's record of the key named name; it fails the
// test unless exactly one exists.
func (s *zdStack) kaKey(name string) kubeadapt.KeyInfo {
	s.t.Helper()
	var found []kubeadapt.KeyInfo
	for _, k := range s.ka.Keys() {
		if k.Name == name {
			found = append(found, k)
		}
	}
	if len(found) != 1 {
		s.t.Fatalf("issuer holds %d keys named %s: %+v", len(found), name, s.ka.Keys())
	}
	return found[0]
}

// call sends one data API request with key and returns the status.
func (s *zdStack) call(key string) int {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.ka.URL()+"/v1/clusters", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// sinkValues reads the current key from every sink the key is delivered
// to, with the stores' own clients, and registers each value for the
// secret scan.
func (s *zdStack) sinkValues() map[string]string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := map[string]string{}
	readers := map[string]consumer.Reader{"files": consumer.File(filepath.Join(s.w.dir, "secrets", zdKey+".json"))}
	if s.vc != nil {
		readers["vault"] = consumer.Vault(s.vc, "secret", "team/"+zdKey, "api_key")
	}
	if s.smc != nil {
		readers["aws"] = consumer.SecretsManager(s.smc, "team/"+zdKey, "")
	}
	for name, r := range readers {
		v, err := r.Read(ctx)
		if err != nil {
			s.t.Fatalf("read sink %s: %v", name, err)
		}
		addSecret(v)
		out[name] = v
	}
	return out
}

// collect registers every key the sinks hold now for the secret scan.
func (s *zdStack) collect() {
	s.t.Helper()
	s.w.collectSecrets()
	s.sinkValues()
}

// rotate starts a staged rotation with the CLI.
func (s *zdStack) rotate(reason string) rotationView {
	s.t.Helper()
	out, code := s.w.cliStdout("", "rotate", zdKey, "--reason", reason, "-o", "json")
	if code != 0 {
		s.t.Fatalf("rotate: exit %d: %s", code, out)
	}
	var r rotationView
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		s.t.Fatalf("rotate -o json: %v\n%s", err, out)
	}
	return r
}

// zdRotation is the admin API's view of a rotation with its drain state.
type zdRotation struct {
	rotationView
	HoldDetail string `json:"hold_detail"`
	Drain      struct {
		StartedAt  time.Time `json:"started_at"`
		QuietSince time.Time `json:"quiet_since"`
		LastValue  float64   `json:"last_value"`
		LastError  string    `json:"last_error"`
		Polls      int       `json:"polls"`
		Escalated  bool      `json:"escalated"`
		Override   string    `json:"override"`
	} `json:"drain"`
}

func (s *zdStack) rotation(id string) zdRotation {
	s.t.Helper()
	var got struct {
		Rotation zdRotation `json:"rotation"`
	}
	if code := s.w.api("GET", "/v1/rotations/"+id, nil, &got); code != 200 {
		s.t.Fatalf("GET rotation %s: %d", id, code)
	}
	return got.Rotation
}

// waitFor polls the rotation until cond holds.
func (s *zdStack) waitFor(id, what string, within time.Duration, cond func(zdRotation) bool) zdRotation {
	s.t.Helper()
	deadline := patient(within)
	for {
		r := s.rotation(id)
		if cond(r) {
			return r
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("rotation %s: not %s within %s: %+v", id, what, within, r)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// zdEvent is an audit event with its time.
type zdEvent struct {
	Seq    int64             `json:"seq"`
	At     time.Time         `json:"at"`
	Actor  string            `json:"actor"`
	Action string            `json:"action"`
	Phase  string            `json:"phase"`
	Detail map[string]string `json:"detail"`
}

// audit reads the rotation's audit trail with `rekey audit -o json`.
func (s *zdStack) audit(id string) []zdEvent {
	s.t.Helper()
	out, code := s.w.cliStdout("", "audit", "--rotation", id, "-o", "json")
	if code != 0 {
		s.t.Fatalf("audit: exit %d: %s", code, out)
	}
	var a struct {
		Events []zdEvent `json:"events"`
	}
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		s.t.Fatalf("audit -o json: %v\n%s", err, out)
	}
	return a.Events
}

// event returns the only event with action, failing the test otherwise.
func event(t *testing.T, events []zdEvent, action string) zdEvent {
	t.Helper()
	var found []zdEvent
	for _, e := range events {
		if e.Action == action {
			found = append(found, e)
		}
	}
	if len(found) != 1 {
		var actions []string
		for _, e := range events {
			actions = append(actions, e.Action)
		}
		t.Fatalf("audit trail has %d %q events: %v", len(found), action, actions)
	}
	return found[0]
}

func hasEvent(events []zdEvent, action string) bool {
	return slices.ContainsFunc(events, func(e zdEvent) bool { return e.Action == action })
}

// zdNotification is a signed webhook notification.
type zdNotification struct {
	Kind       string            `json:"kind"`
	Severity   string            `json:"severity"`
	Key        string            `json:"key"`
	RotationID string            `json:"rotation_id"`
	Message    string            `json:"message"`
	Fields     map[string]string `json:"fields"`
}

// notified returns the rotation's notifications of kind.
func (s *zdStack) notified(id, kind string) []zdNotification {
	s.t.Helper()
	bodies, _ := s.w.notifications()
	var out []zdNotification
	for _, b := range bodies {
		var n zdNotification
		if err := json.Unmarshal(b, &n); err != nil {
			s.t.Fatalf("notification is not JSON: %v", err)
		}
		if n.RotationID == id && n.Kind == kind {
			out = append(out, n)
		}
	}
	return out
}

// waitNotified polls until the rotation has a notification of kind.
func (s *zdStack) waitNotified(id, kind string, within time.Duration) []zdNotification {
	s.t.Helper()
	deadline := patient(within)
	for {
		if n := s.notified(id, kind); len(n) > 0 {
			return n
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("no %s notification for %s within %s", kind, id, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitDone waits until the rotation ended and returns it.
func (s *zdStack) waitDone(id string, within time.Duration) zdRotation {
	s.t.Helper()
	r := s.waitFor(id, "finished", within, func(r zdRotation) bool {
		switch r.Phase {
		case "done", "failed", "cancelled", "denied", "expired":
			return true
		}
		return false
	})
	s.collect()
	return r
}
