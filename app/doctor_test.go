package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/slack-go/slack/slacktest"

	"github.com/rekeyhq/rekey/config"
	"github.com/rekeyhq/rekey/testing/kubeadapt"
	"github.com/rekeyhq/rekey/testing/testenv"
)

// doctorWorld is every dependency doctor calls, running for real: Vault,
// moto (Secrets Manager and IAM), Prometheus, the Kubeadapt-style API and
// Slack's slacktest.
type doctorWorld struct {
	dir                  string
	vault                *testenv.VaultServer
	moto                 *testenv.MotoServer
	prom                 *testenv.PrometheusServer
	ka                   *kubeadapt.Server
	slack                *slacktest.Server
	vaultToken, kaToken  string
	iamUser, unmanagedSM string
}

type doctorVars struct {
	doctorWorld
	Dir, Vault, Moto, Prom, KA, Slack string
	VaultPath, SMName, IAMUser        string
	DrainQuery, Channel, PromURL      string
}

const doctorConfig = `
daemon: {listen: "127.0.0.1:0", admin_listen: "127.0.0.1:0"}
store: {type: sqlite, path: {{.Dir}}/rekey.db}
issuers:
  - name: kubeadapt
    type: http
    base_url: {{.KA}}
    auth: {prefix: "Bearer ", token_file: {{.Dir}}/ka-token}
    mint: {path: /admin/v1/api-keys, body: '{"name": {{"{{"}}json .Name{{"}}"}}}', success: [201], id_path: id, secret_path: secret}
    revoke: {method: DELETE, path: '/admin/v1/api-keys/{{"{{"}}pathescape .ID{{"}}"}}', success: [204], already_revoked: [409]}
    list: {path: '/admin/v1/api-keys?name={{"{{"}}urlquery .Name{{"}}"}}', items_path: data, id_path: id, name_path: name, status_path: status, revoked_statuses: [revoked]}
  - {name: iam, type: awsiam, user_name: {{.IAMUser}}, endpoint: {{.Moto}}, region: us-east-1}
sinks:
  - {name: vault, type: vault, address: {{.Vault}}, auth: {method: token, token_env: DOCTOR_VAULT_TOKEN}, timeout: 2s}
  - {name: aws, type: awssm, region: us-east-1, endpoint: {{.Moto}}, timeout: 2s}
notifiers:
  - {name: slack, type: slack, token_env: DOCTOR_SLACK_TOKEN, api_url: "{{.Slack}}", channel: "{{.Channel}}"}
traffic:
  - {name: prom, type: prometheus, url: "{{.PromURL}}", timeout: 2s}
keys:
  - name: billing
    issuer: kubeadapt
    sinks: [{sink: vault, path: {{.VaultPath}}}, {sink: aws, path: {{.SMName}}}]
    drain: {source: prom, query: '{{.DrainQuery}}', quiet_period: 1m, max_wait: 1h}
  - name: deploy
    issuer: iam
    sinks: [{sink: vault, path: team/deploy}]
`

func newDoctorWorld(t *testing.T) *doctorWorld {
	t.Helper()
	w := &doctorWorld{dir: t.TempDir(), vault: testenv.Vault(t), moto: testenv.Moto(t), prom: testenv.Prometheus(t, testenv.PromOptions{})}
	testenv.SetAWSEnv(t)
	w.kaToken = "ka-admin-doctor-0001"
	w.ka = kubeadapt.New(kubeadapt.Options{AdminToken: w.kaToken})
	if err := w.ka.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.ka.Close() })
	w.slack = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/auth.test", func(rw http.ResponseWriter, r *http.Request) {
			rw.Header().Set("Content-Type", "application/json")
			if r.Header.Get("Authorization") != "Bearer xoxb-doctor-0001" && r.FormValue("token") != "xoxb-doctor-0001" {
				_ = json.NewEncoder(rw).Encode(map[string]any{"ok": false, "error": "invalid_auth"})
				return
			}
			_ = json.NewEncoder(rw).Encode(map[string]any{"ok": true, "user_id": "UREKEY", "team_id": "T1"})
		})
		c.Handle("/conversations.list", func(rw http.ResponseWriter, _ *http.Request) {
			rw.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(rw).Encode(map[string]any{"ok": true, "channels": []map[string]any{{"id": "C0OPS", "name": "ops", "is_member": true}},
				"response_metadata": map[string]any{"next_cursor": ""}})
		})
	})
	w.slack.Start()
	t.Cleanup(w.slack.Stop)
	t.Setenv("DOCTOR_VAULT_TOKEN", w.vault.Token)
	t.Setenv("DOCTOR_SLACK_TOKEN", "xoxb-doctor-0001")
	if err := os.WriteFile(filepath.Join(w.dir, "ka-token"), []byte(w.kaToken), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	ep := w.moto.Endpoint
	w.iamUser = "doctor-user"
	iamc := iam.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: &ep, Credentials: staticCreds{}})
	if _, err := iamc.CreateUser(ctx, &iam.CreateUserInput{UserName: &w.iamUser}); err != nil {
		t.Fatal(err)
	}
	smc := secretsmanager.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: &ep, Credentials: staticCreds{}})
	w.unmanagedSM = "legacy/billing"
	if _, err := smc.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: &w.unmanagedSM, SecretString: aws.String(`{"api_key":"hand-made"}`)}); err != nil {
		t.Fatal(err)
	}
	// A Vault secret written by hand, without rekey's managed-by marker.
	req, _ := http.NewRequestWithContext(ctx, "POST", w.vault.Addr+"/v1/secret/data/legacy/billing", strings.NewReader(`{"data":{"api_key":"hand-made"}}`))
	req.Header.Set("X-Vault-Token", w.vault.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("write legacy vault secret: %d", resp.StatusCode)
	}
	return w
}

type staticCreds struct{}

func (staticCreds) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test", Source: "doctor-test"}, nil
}

// vars are the healthy configuration's values.
func (w *doctorWorld) vars() doctorVars {
	return doctorVars{doctorWorld: *w, Dir: w.dir, Vault: w.vault.Addr, Moto: w.moto.Endpoint, Prom: w.prom.Addr, KA: w.ka.URL(), Slack: w.slack.GetAPIURL(),
		VaultPath: "team/billing", SMName: "team/billing", IAMUser: w.iamUser, Channel: "#ops", PromURL: w.prom.Addr,
		DrainQuery: `sum(rate(http_401_total{key="{{"{{"}}promql .Key{{"}}"}}"}[5m])) or vector(0)`}
}

func (w *doctorWorld) doctor(t *testing.T, v doctorVars) Report {
	t.Helper()
	return Doctor(t.Context(), w.config(t, v), NewLogger(io.Discard, "error"))
}

func (w *doctorWorld) config(t *testing.T, v doctorVars) string {
	t.Helper()
	var b bytes.Buffer
	if err := template.Must(template.New("cfg").Parse(doctorConfig)).Execute(&b, v); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "rekey.yaml")
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func failures(rep Report) string {
	var s []string
	for _, r := range rep.Results {
		if !r.OK {
			s = append(s, fmt.Sprintf("%s %s: %s (fix: %s)", r.Kind, r.Name, r.Detail, r.Fix))
		}
	}
	return strings.Join(s, "\n")
}

// TestDoctorAgainstRealDependencies: against real Vault, moto, Prometheus,
// the Kubeadapt-style API and slacktest, a healthy configuration passes
// every check (exit 0); each broken dependency gives a ✘ on its own check,
// with its fix, and exit 1 — and only that check fails.
func TestDoctorAgainstRealDependencies(t *testing.T) {
	w := newDoctorWorld(t)
	rep := w.doctor(t, w.vars())
	if rep.ExitCode() != DoctorOK {
		t.Fatalf("healthy configuration: exit %d:\n%s", rep.ExitCode(), failures(rep))
	}
	kinds := map[string]int{}
	for _, r := range rep.Results {
		kinds[r.Kind]++
	}
	for kind, n := range map[string]int{"config": 1, "store": 1, "issuer": 2, "sink": 3, "notifier": 1, "traffic": 1} {
		if kinds[kind] != n {
			t.Errorf("%d %s checks, want %d: %+v", kinds[kind], kind, n, rep.Results)
		}
	}
	for name, tc := range map[string]struct {
		edit  func(t *testing.T, v *doctorVars)
		check string // the failing check's name contains this
		want  string // its detail contains this
	}{
		"vault token refused": {edit: func(t *testing.T, _ *doctorVars) { t.Setenv("DOCTOR_VAULT_TOKEN", "s.wrong") }, check: "sink vault:", want: "403"},
		"vault target not managed": {edit: func(_ *testing.T, v *doctorVars) { v.VaultPath = "legacy/billing" }, check: "sink vault: legacy/billing",
			want: "managed-by marker"},
		"aws secret not managed": {edit: func(_ *testing.T, v *doctorVars) { v.SMName = w.unmanagedSM }, check: "sink aws: " + w.unmanagedSM, want: "managed-by marker"},
		"issuer token refused": {edit: func(t *testing.T, _ *doctorVars) {
			if err := os.WriteFile(filepath.Join(w.dir, "ka-token"), []byte("ka-admin-wrong"), 0o600); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = os.WriteFile(filepath.Join(w.dir, "ka-token"), []byte(w.kaToken), 0o600) })
		}, check: "issuer kubeadapt", want: "401"},
		"iam user missing":       {edit: func(_ *testing.T, v *doctorVars) { v.IAMUser = "nobody" }, check: "issuer iam", want: "NoSuchEntity"},
		"prometheus unreachable": {edit: func(_ *testing.T, v *doctorVars) { v.PromURL = "http://127.0.0.1:1" }, check: "traffic prom", want: "connection refused"},
		"drain query matches nothing": {edit: func(_ *testing.T, v *doctorVars) {
			v.DrainQuery = `sum(rate(http_401_totl{key="{{"{{"}}promql .Key{{"}}"}}"}[5m]))`
		}, check: "traffic prom: drain new_key_failures query of key billing", want: "no series matched"},
		"slack token refused":   {edit: func(t *testing.T, _ *doctorVars) { t.Setenv("DOCTOR_SLACK_TOKEN", "xoxb-wrong") }, check: "notifier slack", want: "invalid_auth"},
		"slack channel missing": {edit: func(_ *testing.T, v *doctorVars) { v.Channel = "#nosuch" }, check: "notifier slack", want: "#nosuch not found"},
	} {
		t.Run(name, func(t *testing.T) {
			v := w.vars()
			tc.edit(t, &v)
			rep := w.doctor(t, v)
			if rep.ExitCode() != DoctorDependency {
				t.Fatalf("exit %d, want %d:\n%s", rep.ExitCode(), DoctorDependency, failures(rep))
			}
			var bad []CheckResult
			for _, r := range rep.Results {
				if !r.OK {
					bad = append(bad, r)
				}
			}
			ok := len(bad) > 0
			for _, r := range bad {
				ok = ok && strings.Contains(r.Name, tc.check) && strings.Contains(r.Detail, tc.want) && r.Fix != ""
			}
			if !ok {
				t.Fatalf("want ✘ only on %q, mentioning %q with a fix, got:\n%s", tc.check, tc.want, failures(rep))
			}
		})
	}
}

// Readiness needs the dependencies to answer, not every key to be right: a
// drain query that matches no series yet (the 401 counter appears with the
// first 401) and a target someone else owns fail doctor, not /readyz.
func TestReadinessChecksAnswersOnly(t *testing.T) {
	w := newDoctorWorld(t)
	v := w.vars()
	v.DrainQuery = `sum(rate(http_401_total{key="{{"{{"}}promql .Key{{"}}"}}"}[5m]))`
	v.VaultPath = "legacy/billing"
	path := w.config(t, v)
	if rep := Doctor(t.Context(), path, NewLogger(io.Discard, "error")); rep.ExitCode() != DoctorDependency {
		t.Fatalf("doctor: exit %d, want %d:\n%s", rep.ExitCode(), DoctorDependency, failures(rep))
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Build(t.Context(), cfg, NewLogger(io.Discard, "error"), BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	res := d.CheckDependencies(t.Context(), false)
	rep := Report{Results: res}
	if rep.ExitCode() != DoctorOK {
		t.Fatalf("readiness checks fail:\n%s", failures(rep))
	}
	names := map[string]bool{}
	for _, r := range res {
		names[r.Name] = true
	}
	if !names["traffic prom"] || !names["issuer kubeadapt"] || !names["store sqlite"] || !names["sink vault"] || !names["sink aws"] {
		t.Fatalf("readiness checks: %+v", res)
	}
	if err := w.prom.Stop(); err != nil {
		t.Fatal(err)
	}
	if rep := (Report{Results: d.CheckDependencies(t.Context(), false)}); rep.ExitCode() != DoctorDependency || !strings.Contains(failures(rep), "traffic prom") {
		t.Fatalf("Prometheus stopped, readiness: %s", failures(rep))
	}
}

// TestDoctorReportsEveryMissingSecret: with none of the configuration's
// secrets set, doctor names every unresolved reference at once, by YAML
// path, and exits 2 (configuration) without calling anything.
func TestDoctorReportsEveryMissingSecret(t *testing.T) {
	dir := t.TempDir()
	yaml := fmt.Sprintf(`
store: {type: sqlite, path: %[1]s/rekey.db}
issuers:
  - {name: ka, type: http, base_url: "http://127.0.0.1:1", auth: {token_env: DOCTOR_NOPE_KA},
     mint: {path: /k, id_path: id, secret_path: secret}, revoke: {path: /k}}
sinks:
  - {name: vault, type: vault, address: "http://127.0.0.1:1", auth: {method: token, token_file: %[1]s/no-such-file}}
notifiers:
  - {name: slack, type: slack, token_env: DOCTOR_NOPE_SLACK, channel: "#ops"}
  - {name: hook, type: webhook, url: "http://127.0.0.1:1/hook", secret_env: DOCTOR_NOPE_HOOK}
traffic:
  - {name: prom, type: prometheus, url: "http://127.0.0.1:1", bearer_token_env: DOCTOR_NOPE_PROM}
keys:
  - {name: k, issuer: ka, sinks: [{sink: vault}], drain: {source: prom, query: 'sum(x{k="{{promql .Key}}"})'}}
`, dir)
	path := filepath.Join(dir, "rekey.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	rep := Doctor(t.Context(), path, NewLogger(io.Discard, "error"))
	if rep.ExitCode() != DoctorConfig {
		t.Fatalf("exit %d, want %d:\n%s", rep.ExitCode(), DoctorConfig, failures(rep))
	}
	got := failures(rep)
	for _, want := range []string{"issuers[0].auth.token_env", "DOCTOR_NOPE_KA", "sinks[0].auth.token_file", "no-such-file",
		"notifiers[0].token_env", "notifiers[1].secret_env", "traffic[0].bearer_token_env", "export DOCTOR_NOPE_PROM"} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "rekey.db")); err == nil {
		t.Error("doctor created the store although the configuration is incomplete")
	}
}
