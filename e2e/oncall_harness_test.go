package e2e

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/testing/kubeadapt"
)

// The on-call suite's world: a Kubeadapt-style server whose dashboard only
// a person can use (the manual issuer, with a probe and a deep link), the
// file sink, the webhook notifier's receiver standing in for what a person
// is sent, and the generic exposure webhook.
const oncallTemplate = `
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
  - name: dashboard
    type: manual
    pattern: '^ka_live_[0-9A-Za-z]{32}$'
    dashboard_url: 'https://app.kubeadapt.example/settings/api-keys?search={{"{{"}}.Name{{"}}"}}'
    verify:
      url: {{.KA}}/v1/clusters
      expect: [200]
sinks:
  - {name: files, type: file, dir: {{.W.Dir}}/secrets}
notifiers:
  - {name: log, type: log}
  - {name: hook, type: webhook, url: {{.W.HookURL}}, secret_file: {{.W.Dir}}/webhook-secret}
webhooks:
  - {name: leaks, type: exposure, secret_file: {{.W.Dir}}/exposure-secret}
traffic:
  - {name: fixed, type: fixed}
defaults:
  verify: true
  drain: {source: fixed, quiet_period: {{.Quiet}}, max_wait: 1h, poll_interval: 100ms}
  reminders: {every: {{.Every}}, escalate_after: {{.Escalate}}, secret_expire_after: {{.Expire}}}
keys:
  - name: kubeadapt-billing
    issuer: dashboard
    owners: [alice@example.com, bob@example.com]
    params: {scopes: [clusters:read]}
    sinks: [{sink: files}]
    decommission: {second_person: true}
`

// oncallParams are the durations of one on-call world.
type oncallParams struct {
	Quiet, Every, Escalate, Expire string
}

// oncall is the on-call engineer's world.
type oncall struct {
	*issuerWorld
	ka  *kubeadapt.Server
	tok string // the on-call engineer's API token, made on first use
}

const billing = "kubeadapt-billing"

func newOncall(t *testing.T, p oncallParams) *oncall {
	t.Helper()
	for _, d := range []*string{&p.Quiet, &p.Every, &p.Escalate, &p.Expire} {
		if *d == "" {
			*d = "1h"
		}
	}
	ka := startIssuerKubeadapt(t)
	w := newWorldFrom(t, oncallTemplate, func(w *world) any {
		return map[string]any{"W": w, "KA": ka.URL(), "Quiet": p.Quiet, "Every": p.Every, "Escalate": p.Escalate, "Expire": p.Expire}
	})
	writeFile(t, filepath.Join(w.dir, "exposure-secret"), exposureSecret)
	return &oncall{issuerWorld: &issuerWorld{w}, ka: ka}
}

// hookEvent is a notification as a person's tooling receives it.
type hookEvent struct {
	ID         string            `json:"id"`
	Kind       string            `json:"kind"`
	Severity   string            `json:"severity"`
	RotationID string            `json:"rotation_id"`
	Phase      string            `json:"phase"`
	Owners     []string          `json:"owners"`
	Actor      string            `json:"actor"`
	Message    string            `json:"message"`
	Fields     map[string]string `json:"fields"`
	At         time.Time         `json:"at"`
}

// events are the notifications of rotation id received so far (each once:
// a redelivery carries the same id).
func (o *oncall) events(id string) []hookEvent {
	bodies, _ := o.notifications()
	seen := map[string]bool{}
	var out []hookEvent
	for _, b := range bodies {
		var ev hookEvent
		if json.Unmarshal(b, &ev) != nil || ev.RotationID != id || seen[ev.ID] {
			continue
		}
		seen[ev.ID] = true
		out = append(out, ev)
	}
	return out
}

// waitEvent waits until a notification of rotation id satisfies ok.
func (o *oncall) waitEvent(id, what string, within time.Duration, ok func(hookEvent) bool) hookEvent {
	o.t.Helper()
	deadline := patient(within)
	for {
		for _, ev := range o.events(id) {
			if ok(ev) {
				return ev
			}
		}
		if time.Now().After(deadline) {
			var got []string
			for _, ev := range o.events(id) {
				got = append(got, ev.Kind+" "+ev.Severity+": "+ev.Message)
			}
			o.t.Fatalf("no notification %s within %s; got:\n%s", what, within, strings.Join(got, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// held picks the notifications of rotation id that ask a person for hold.
func held(evs []hookEvent, hold string) []hookEvent {
	var out []hookEvent
	for _, ev := range evs {
		if ev.Kind == "rotation.held" && ev.Fields["hold"] == hold {
			out = append(out, ev)
		}
	}
	return out
}

var commandRE = regexp.MustCompile("`(rekey (?:submit|confirm) rot_[0-9a-f]+)`")

// command is the complete command a message tells the person to run.
func command(t *testing.T, msg, verb string) []string {
	t.Helper()
	for _, m := range commandRE.FindAllStringSubmatch(msg, -1) {
		if f := strings.Fields(m[1]); f[1] == verb {
			return f[1:]
		}
	}
	t.Fatalf("the message gives no complete `rekey %s <rotation>` command: %s", verb, msg)
	return nil
}

// runAs runs a rekey command as printed, by the on-call engineer: the CLI
// as a client of the admin API (REKEY_ADDR, REKEY_TOKEN), authenticated as
// oncall@example.com with the operator role.
func (o *oncall) runAs(stdin string, args ...string) (string, int) {
	o.t.Helper()
	if o.tok == "" {
		o.tok = o.token("oncall@example.com", "operator")
	}
	out, errOut, code := o.client(o.tok).rekey(stdin, args...)
	return out + errOut, code
}

// mint is the person creating a key in the dashboard, by the name asked.
func (o *oncall) mint(name string) (kubeadapt.KeyInfo, string) {
	o.t.Helper()
	k, secret, err := o.ka.CreateKey(kubeadapt.KeyRequest{Name: name, Scopes: []string{kubeadapt.ScopeClustersRead}})
	if err != nil {
		o.t.Fatal(err)
	}
	addSecret(secret)
	return k, secret
}

// revokeAtDashboard is the person revoking a key in the dashboard.
func (o *oncall) revokeAtDashboard(k kubeadapt.KeyInfo) {
	o.t.Helper()
	if _, err := o.ka.Revoke(k.ID); err != nil {
		o.t.Fatal(err)
	}
}

// bootstrap answers the automatic bootstrap: mint v1, submit it as told.
func (o *oncall) bootstrap() (kubeadapt.KeyInfo, string) {
	o.t.Helper()
	id := o.activeRotation(billing, 10*time.Second)
	ev := o.waitEvent(id, "asking for kubeadapt-billing-v1", 10*time.Second, func(ev hookEvent) bool {
		return ev.Kind == "rotation.held" && ev.Fields["hold"] == "secret"
	})
	k, s := o.mint(billing + "-v1")
	if out, code := o.runAs(s+"\n", command(o.t, ev.Message, "submit")...); code != 0 {
		o.t.Fatalf("submit v1: exit %d: %s", code, out)
	}
	if r := o.waitRotation(id, 10*time.Second); r.Phase != "done" {
		o.t.Fatalf("bootstrap ended %s: %s", r.Phase, r.Outcome)
	}
	return k, s
}

// liveAtIssuer are the names of the keys the dashboard holds active.
func (o *oncall) liveAtIssuer() []string {
	active, _ := kaKeysNamed(o.ka, billing+"-v", true)
	var names []string
	for _, k := range active {
		names = append(names, k.Name)
	}
	return names
}

// auditAction is the rotation's last audit event with action.
func (o *oncall) auditAction(id, action string) *auditEvent {
	o.t.Helper()
	var found *auditEvent
	for _, ev := range o.auditOf(id) {
		if ev.Action == action {
			e := ev
			found = &e
		}
	}
	return found
}
