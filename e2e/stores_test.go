package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	vapi "github.com/hashicorp/vault/api"

	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/testing/testenv"
)

// The Vault KV v2 and Secrets Manager sinks through the real binary, against
// a real Vault 1.13 and moto, with the random issuer so that only the sinks
// are under test. Every value is read back with the official clients only
// (vault/api KV v2; aws-sdk-go-v2 GetSecretValue with VersionStage
// AWSCURRENT, see TESTING.md), as a consumer would.

const storesTemplate = `
daemon:
  listen: 127.0.0.1:0
  address_file: {{.Dir}}/rekey.addr
  admin_listen: 127.0.0.1:0
  admin_address_file: {{.Dir}}/rekey.admin.addr
  admin_token_file: {{.Dir}}/admin-token
  schedule: "@every 1h"
  poll_interval: 100ms
  lease_ttl: 2s # a restarted daemon (a new instance) resumes its rotations after the lease runs out
  step_timeout: 10s
  retry_base: 200ms
  retry_max: 1s
  log_level: debug
store:
  type: sqlite
  path: {{.Dir}}/rekey.db
issuers:
  - name: demo
    type: random
    ledger: {{.Dir}}/ledger.json
sinks:
  - name: vault
    type: vault
    address: {{.Vault}}
    auth:
      method: token
      token_file: {{.Dir}}/vault-token
    timeout: 2s
  - name: aws
    type: awssm
    region: us-east-1
    endpoint: {{.Moto}}
    timeout: 2s
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
    quiet_period: {{.Quiet}}
    max_wait: 1h
    poll_interval: 100ms
  watch:
    period: {{.Watch}}
    poll_interval: 100ms
keys:
  - name: api
    issuer: demo
    owners: [alice@example.com]
    sinks:
{{- if .VaultPath}}
      - sink: vault
        path: {{.VaultPath}}
{{- end}}
{{- if .AWSName}}
      - sink: aws
        path: {{.AWSName}}
{{- end}}
`

// The Vault fields the sink writes by default.
const (
	vaultFieldCurrent  = "api_key"
	vaultFieldPending  = "api_key_pending"
	vaultFieldPrevious = "api_key_previous"
)

// What an uninterrupted bootstrap plus one staged rotation leaves behind:
// Vault versions 1 (bootstrap), 2 (new key staged beside the old), 3
// (promoted: current new, previous old) and 4 (cleaned up); Secrets Manager
// versions 1 (created) and 2 (staged as AWSPENDING, then AWSCURRENT).
const (
	storeVaultVersions = 4
	storeAWSVersions   = 2
)

// storeKit is one Vault and one moto, with the official clients a
// consumer would use.
type storeKit struct {
	t     *testing.T
	vault *testenv.VaultServer
	moto  *testenv.MotoServer
	kv    *vapi.KVv2
	sm    *sm.Client
}

func newStoreKit(t *testing.T) *storeKit {
	t.Helper()
	v, m := testenv.Vault(t), testenv.Moto(t)
	conf := vapi.DefaultConfig()
	conf.Address, conf.MaxRetries, conf.Timeout = v.Addr, 0, 3*time.Second
	vc, err := vapi.NewClient(conf)
	if err != nil {
		t.Fatal(err)
	}
	vc.SetToken(v.Token)
	acfg, err := awsconfig.LoadDefaultConfig(context.Background(),
		awsconfig.WithRegion("us-east-1"),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")),
		awsconfig.WithRetryMaxAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	client := sm.NewFromConfig(acfg, func(o *sm.Options) { o.BaseEndpoint = aws.String(m.Endpoint) })
	return &storeKit{t: t, vault: v, moto: m, kv: vc.KVv2("secret"), sm: client}
}

// forTest returns the kit for a subtest (its failures go to t).
func (k *storeKit) forTest(t *testing.T) *storeKit {
	c := *k
	c.t = t
	return &c
}

// storeTarget says where one test's key lives; "" = that sink is unused.
type storeTarget struct{ vault, aws string }

// storeName turns the test's name into a Vault path and secret name that
// no other test uses.
func storeName(t *testing.T) string {
	return "e2e/" + strings.Trim(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-"), "-")
}

type storesOpts struct {
	quiet, watch string
}

// storeWorld is a world whose key "api" is delivered to Vault and/or
// Secrets Manager.
type storeWorld struct {
	*world
	kit *storeKit
	tg  storeTarget
}

func (k *storeKit) world(t *testing.T, tg storeTarget, o storesOpts) *storeWorld {
	t.Helper()
	if o.quiet == "" {
		o.quiet = "0s"
	}
	if o.watch == "" {
		o.watch = "0s"
	}
	w := newWorldFrom(t, storesTemplate, func(w *world) any {
		return map[string]any{
			"Dir": w.Dir(), "Hook": w.HookURL(),
			"Vault": k.vault.Addr, "Moto": k.moto.Endpoint,
			"VaultPath": tg.vault, "AWSName": tg.aws,
			"Quiet": o.quiet, "Watch": o.watch,
		}
	})
	writeFile(t, filepath.Join(w.dir, "vault-token"), k.vault.Token)
	return &storeWorld{world: w, kit: k.forTest(t), tg: tg}
}

// startDaemon runs the daemon with the fake AWS credentials (and extra
// environment such as a failpoint).
func (w *storeWorld) startDaemon(env ...string) *daemon {
	w.t.Helper()
	return w.start(append(w.kit.moto.Env(), env...)...)
}

// vaultData reads the latest version of a Vault secret.
func (k *storeKit) vaultData(ctx context.Context, path string) (map[string]any, error) {
	sec, err := k.kv.Get(ctx, path)
	if err != nil {
		return nil, err
	}
	for _, v := range sec.Data {
		if s, ok := v.(string); ok {
			addSecret(s)
		}
	}
	return sec.Data, nil
}

var errStoreMissing = errors.New("no current value")

// vaultCurrent is what a consumer of the Vault secret reads.
func (k *storeKit) vaultCurrent(ctx context.Context, path string) (string, error) {
	data, err := k.vaultData(ctx, path)
	if err != nil {
		return "", err
	}
	v, _ := data[vaultFieldCurrent].(string)
	if v == "" {
		return "", fmt.Errorf("vault %s: no %s field: %w", path, vaultFieldCurrent, errStoreMissing)
	}
	return v, nil
}

// awsValue reads the version of a secret that holds label stage.
func (k *storeKit) awsValue(ctx context.Context, name, stage string) (string, error) {
	out, err := k.sm.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String(name), VersionStage: aws.String(stage)})
	if err != nil {
		return "", err
	}
	v := aws.ToString(out.SecretString)
	if v == "" {
		return "", fmt.Errorf("secrets manager %s: empty %s value: %w", name, stage, errStoreMissing)
	}
	addSecret(v)
	return v, nil
}

// awsCurrent is what a consumer of the secret reads.
func (k *storeKit) awsCurrent(ctx context.Context, name string) (string, error) {
	return k.awsValue(ctx, name, "AWSCURRENT")
}

// awsLabels returns label → version id.
func (k *storeKit) awsLabels(ctx context.Context, name string) map[string]string {
	k.t.Helper()
	out, err := k.sm.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String(name)})
	if err != nil {
		k.t.Fatalf("describe %s: %v", name, err)
	}
	labels := map[string]string{}
	for id, stages := range out.VersionIdsToStages {
		for _, l := range stages {
			labels[l] = id
		}
	}
	return labels
}

// storeNotFound reports a read that found no secret or no current value:
// what a consumer must never see while rekey works.
func storeNotFound(err error) bool {
	var rnf *smtypes.ResourceNotFoundException
	return errors.Is(err, vapi.ErrSecretNotFound) || errors.Is(err, errStoreMissing) || errors.As(err, &rnf)
}

// mustCurrent reads the consumer-visible value of every store of tg; when
// both are used they must agree.
func (k *storeKit) mustCurrent(ctx context.Context, tg storeTarget) string {
	k.t.Helper()
	var vals []string
	if tg.vault != "" {
		v, err := k.vaultCurrent(ctx, tg.vault)
		if err != nil {
			k.t.Fatalf("vault read: %v", err)
		}
		vals = append(vals, v)
	}
	if tg.aws != "" {
		v, err := k.awsCurrent(ctx, tg.aws)
		if err != nil {
			k.t.Fatalf("secrets manager read: %v", err)
		}
		vals = append(vals, v)
	}
	if len(vals) == 2 && vals[0] != vals[1] {
		k.t.Fatal("vault and secrets manager disagree on the current value")
	}
	return vals[0]
}

// storeRotation is the admin API's view of a rotation, with the fields the
// harness's rotationView leaves out.
type storeRotation struct {
	rotationView
	Attempts    int    `json:"attempts"`
	ErrorReason string `json:"error_reason"`
}

// rotation reads a rotation through the admin API.
func (w *storeWorld) rotation(id string) storeRotation {
	w.t.Helper()
	var got struct {
		Rotation storeRotation `json:"rotation"`
	}
	if code := w.api("GET", "/v1/rotations/"+id, nil, &got); code != 200 {
		w.t.Fatalf("GET rotation %s: %d", id, code)
	}
	return got.Rotation
}

// rotate starts a staged rotation of key api through the admin API.
func (w *storeWorld) rotate() string {
	w.t.Helper()
	var r rotationView
	if code := w.api("POST", "/v1/keys/api/rotate", map[string]string{"reason": "stores e2e"}, &r); code != 201 {
		w.t.Fatalf("rotate: %d", code)
	}
	return r.ID
}

// rotateCLI starts a rotation with the CLI, which works on the store: a
// daemon that kills itself at once cannot lose the answer.
func (w *storeWorld) rotateCLI() string {
	w.t.Helper()
	out, code := w.cliStdout("", "rotate", "api", "--reason", "stores e2e", "-o", "json")
	if code != 0 {
		w.t.Fatalf("rotate: exit %d: %s", code, out)
	}
	var r rotationView
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		w.t.Fatal(err)
	}
	return r.ID
}

// waitPhase polls the rotation until ok accepts it; every observation is
// passed to each (which may fail the test).
func (w *storeWorld) waitPhase(id, what string, within time.Duration, ok func(storeRotation) bool) storeRotation {
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
		time.Sleep(20 * time.Millisecond)
	}
}

// checkEnd proves the end state of a finished rotation: newV current in
// every store with nothing pending or previous, no version beyond what an
// uninterrupted run writes, every Vault version readable, the markers in
// place, and exactly one live credential at the issuer — newV.
func (w *storeWorld) checkEnd(ctx context.Context, newV string) {
	w.t.Helper()
	t, k, tg := w.t, w.kit, w.tg
	if got := k.mustCurrent(ctx, tg); got != newV {
		t.Fatal("the current value is not the new key")
	}
	if tg.vault != "" {
		data, err := k.vaultData(ctx, tg.vault)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) != 1 || data[vaultFieldCurrent] != newV {
			t.Fatalf("vault %s holds fields %v after cleanup, want only %s", tg.vault, slices.Sorted(maps.Keys(data)), vaultFieldCurrent)
		}
		md, err := k.kv.GetMetadata(ctx, tg.vault)
		if err != nil {
			t.Fatal(err)
		}
		if md.CustomMetadata["managed-by"] != "rekey" {
			t.Fatalf("vault %s: custom metadata %v lacks managed-by=rekey", tg.vault, md.CustomMetadata)
		}
		if md.CurrentVersion != storeVaultVersions || len(md.Versions) != storeVaultVersions {
			t.Fatalf("vault %s: current_version %d with %d versions; an uninterrupted run leaves %d",
				tg.vault, md.CurrentVersion, len(md.Versions), storeVaultVersions)
		}
		for n := 1; n <= md.CurrentVersion; n++ {
			vm, ok := md.Versions[fmt.Sprint(n)]
			if !ok || vm.Destroyed || !vm.DeletionTime.IsZero() {
				t.Fatalf("vault %s: version %d is missing, deleted or destroyed: %+v", tg.vault, n, vm)
			}
			sec, err := k.kv.GetVersion(ctx, tg.vault, n)
			if err != nil {
				t.Fatalf("vault %s: version %d is not readable: %v", tg.vault, n, err)
			}
			if v, _ := sec.Data[vaultFieldCurrent].(string); v == "" {
				t.Fatalf("vault %s: version %d has no current value", tg.vault, n)
			}
			for _, v := range sec.Data {
				if s, ok := v.(string); ok {
					addSecret(s)
				}
			}
		}
	}
	if tg.aws != "" {
		labels := k.awsLabels(ctx, tg.aws)
		for _, l := range []string{"AWSPENDING", "AWSPREVIOUS"} {
			if id, ok := labels[l]; ok {
				t.Fatalf("secrets manager %s: %s left on version %s after cleanup", tg.aws, l, id)
			}
		}
		out, err := k.sm.ListSecretVersionIds(ctx, &sm.ListSecretVersionIdsInput{SecretId: aws.String(tg.aws), IncludeDeprecated: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Versions) != storeAWSVersions {
			t.Fatalf("secrets manager %s: %d versions; an uninterrupted run creates %d", tg.aws, len(out.Versions), storeAWSVersions)
		}
		d, err := k.sm.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String(tg.aws)})
		if err != nil {
			t.Fatal(err)
		}
		tagged := false
		for _, tag := range d.Tags {
			tagged = tagged || aws.ToString(tag.Key) == "managed-by" && aws.ToString(tag.Value) == "rekey"
		}
		if !tagged {
			t.Fatalf("secrets manager %s: no managed-by=rekey tag", tg.aws)
		}
	}
	live := 0
	for _, c := range w.ledger() {
		if c.RevokedAt == "" {
			live++
			if c.Fingerprint != rotator.Fingerprint(newV) {
				t.Fatalf("orphan: %s is live at the issuer but is not the delivered key", c.Name)
			}
		}
	}
	if live != 1 {
		t.Fatalf("%d live credentials at the issuer, want exactly 1", live)
	}
	if out, code := w.cli("", "audit", "verify"); code != 0 {
		t.Fatalf("audit verify: exit %d: %s", code, out)
	}
}

// oldRevoked reports whether the ledger has generation 1 (api-v1) revoked.
func (w *storeWorld) oldRevoked() bool {
	w.t.Helper()
	for _, c := range w.ledger() {
		if c.Name == "api-v1" {
			return c.RevokedAt != ""
		}
	}
	w.t.Fatal("the ledger has no api-v1")
	return false
}
