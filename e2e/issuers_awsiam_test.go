package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/rekeyhq/rekey/testing/testenv"
)

// iamUser is an IAM user in moto, seen through the test's own IAM client.
type iamUser struct {
	t    *testing.T
	c    *iam.Client
	name string
}

func newIAMUser(t *testing.T, m *testenv.MotoServer, name string) iamUser {
	t.Helper()
	c := iam.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	}, func(o *iam.Options) { o.BaseEndpoint = aws.String(m.Endpoint) })
	if _, err := c.CreateUser(ctx(t), &iam.CreateUserInput{UserName: aws.String(name)}); err != nil {
		t.Fatalf("create IAM user %s: %v", name, err)
	}
	return iamUser{t: t, c: c, name: name}
}

// createKey creates an access key rekey did not mint.
func (u iamUser) createKey() string {
	u.t.Helper()
	out, err := u.c.CreateAccessKey(ctx(u.t), &iam.CreateAccessKeyInput{UserName: aws.String(u.name)})
	if err != nil {
		u.t.Fatal(err)
	}
	addSecret(aws.ToString(out.AccessKey.SecretAccessKey))
	return aws.ToString(out.AccessKey.AccessKeyId)
}

// keys returns the user's access keys: id → status.
func (u iamUser) keys() map[string]types.StatusType {
	u.t.Helper()
	out, err := u.c.ListAccessKeys(ctx(u.t), &iam.ListAccessKeysInput{UserName: aws.String(u.name)})
	if err != nil {
		u.t.Fatal(err)
	}
	ks := map[string]types.StatusType{}
	for _, k := range out.AccessKeyMetadata {
		ks[aws.ToString(k.AccessKeyId)] = k.Status
	}
	return ks
}

// tags returns the user's tags.
func (u iamUser) tags() map[string]string {
	u.t.Helper()
	out, err := u.c.ListUserTags(ctx(u.t), &iam.ListUserTagsInput{UserName: aws.String(u.name)})
	if err != nil {
		u.t.Fatal(err)
	}
	tags := map[string]string{}
	for _, tg := range out.Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	return tags
}

// awsKey is the JSON document the awsiam issuer delivers (format: json).
type awsKey struct {
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string `json:"SecretAccessKey"`
}

// current reads the key delivered to the file sink.
func (u iamUser) current(w *issuerWorld, key string) (awsKey, int) {
	u.t.Helper()
	doc := w.sink(key)
	if doc.Current == nil || doc.Pending != nil || doc.Previous != nil {
		u.t.Fatalf("sink of %s: %+v, want a current value only", key, doc)
	}
	var k awsKey
	dec := json.NewDecoder(strings.NewReader(doc.Current.Value))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&k); err != nil || !strings.HasPrefix(k.AccessKeyID, "AKIA") || k.SecretAccessKey == "" {
		u.t.Fatalf("the sink does not hold {\"AccessKeyId\",\"SecretAccessKey\"} (err %v)", err)
	}
	addSecret(k.SecretAccessKey)
	return k, doc.Current.Generation
}

func awsiamIssuer(endpoint, user string, deleteOnRevoke bool) string {
	return fmt.Sprintf(`  - name: iam
    type: awsiam
    user_name: %s
    endpoint: %s
    region: us-east-1
    format: json
    delete_on_revoke: %t
`, user, endpoint, deleteOnRevoke)
}

// IAM user access keys against moto, through the rekey binary: staged
// rotations (deleting or only deactivating the old key), the refusal to
// touch keys rekey did not mint, and the orphan of a crash between
// CreateAccessKey and rekey's record. One moto serves every subtest, each
// with its own user.
func TestAWSIAMIssuer(t *testing.T) {
	t.Parallel()
	m := testenv.Moto(t)
	env := m.Env()
	newWorld := func(t *testing.T, deleteOnRevoke bool) (*issuerWorld, iamUser) {
		u := newIAMUser(t, m, "rekey-e2e-"+strings.ReplaceAll(t.Name()[len("TestAWSIAMIssuer/"):], "_", "-"))
		return newIssuerWorld(t, "iam", "iam", func(string) string { return awsiamIssuer(m.Endpoint, u.name, deleteOnRevoke) }), u
	}

	// Bootstrap mints iam-v1, a rotation iam-v2; the old access key is
	// deleted (delete_on_revoke: true) or left Inactive (false), and the
	// sink holds the new key as {"AccessKeyId","SecretAccessKey"}.
	for _, del := range []bool{true, false} {
		t.Run(fmt.Sprintf("rotation_delete_%t", del), func(t *testing.T) {
			t.Parallel()
			w, u := newWorld(t, del)
			d := w.start(env...)
			w.bootstrap("iam")
			old, _ := u.current(w, "iam")
			if got := u.keys(); len(got) != 1 || got[old.AccessKeyID] != types.StatusTypeActive {
				t.Fatalf("after bootstrap: keys %v, want %s active", got, old.AccessKeyID)
			}
			start := time.Now()
			id := w.rotate("iam")
			if r := w.waitRotation(id, 15*time.Second); r.Phase != "done" {
				t.Fatalf("rotation ended %s: %s %s", r.Phase, r.Outcome, r.LastError)
			}
			t.Logf("IAM rotation (delete_on_revoke %t): %s", del, time.Since(start).Round(time.Millisecond))
			cur, gen := u.current(w, "iam")
			if gen != 2 || cur.AccessKeyID == old.AccessKeyID || cur.SecretAccessKey == old.SecretAccessKey {
				t.Fatalf("the sink holds generation %d, %s (old %s)", gen, cur.AccessKeyID, old.AccessKeyID)
			}
			want := map[string]types.StatusType{cur.AccessKeyID: types.StatusTypeActive}
			if !del {
				want[old.AccessKeyID] = types.StatusTypeInactive
			}
			if got := u.keys(); !maps.Equal(got, want) {
				t.Fatalf("access keys at the end: %v, want %v", got, want)
			}
			if issuerID, _ := w.keyIssuerID("iam"); issuerID != cur.AccessKeyID {
				t.Fatalf("rekey records %s, the sink holds %s", issuerID, cur.AccessKeyID)
			}
			tags := u.tags()
			if tags[cur.AccessKeyID] != "rekey:iam-v2" || slices.ContainsFunc(slices.Collect(maps.Keys(tags)), func(k string) bool { return strings.HasPrefix(k, "rekey:minting:") }) {
				t.Fatalf("user tags at the end: %v", tags)
			}
			if _, ok := tags[old.AccessKeyID]; ok == del {
				t.Fatalf("description tag of the old key (delete %t): %v", del, tags)
			}
			d.stop()
			w.scanForSecrets()
		})
	}

	// A user that already holds two access keys: rekey will not delete one
	// it did not mint, so the bootstrap fails at once, naming the user and
	// both keys, and neither key is touched.
	t.Run("two_foreign_keys", func(t *testing.T) {
		t.Parallel()
		w, u := newWorld(t, true)
		a, b := u.createKey(), u.createKey()
		d := w.start(env...)
		id := w.activeRotation("iam", 10*time.Second)
		r := w.waitRotation(id, 10*time.Second)
		if r.Phase != "failed" || !hasAll(r.Outcome, "user "+u.name, "already has two access keys", a, b, "will not delete a key it did not mint") {
			t.Fatalf("bootstrap with two foreign keys: %s: %s", r.Phase, r.Outcome)
		}
		t.Logf("refused: %s", r.Outcome)
		want := map[string]types.StatusType{a: types.StatusTypeActive, b: types.StatusTypeActive}
		if got := u.keys(); !maps.Equal(got, want) {
			t.Fatalf("keys after the refusal: %v, want %v", got, want)
		}
		if tags := u.tags(); len(tags) != 0 {
			t.Fatalf("rekey tagged the user: %v", tags)
		}
		if acts := auditActions(w.auditOf(id)); slices.Contains(acts, "minted") || slices.Contains(acts, "step.retry") {
			t.Fatalf("audit: %v", acts)
		}
		w.waitNotified(5*time.Second, "iam", "failed", u.name)
		d.stop()
		w.scanForSecrets()
	})

	// One foreign key beside rekey's iam-v1: the rotation cannot mint
	// iam-v2, fails with the user named and rolls back; iam-v1 stays
	// current and active, the foreign key untouched.
	t.Run("foreign_key_beside_ours", func(t *testing.T) {
		t.Parallel()
		w, u := newWorld(t, true)
		foreign := u.createKey()
		d := w.start(env...)
		w.bootstrap("iam")
		ours, _ := u.current(w, "iam")
		id := w.rotate("iam")
		r := w.waitRotation(id, 10*time.Second)
		if r.Phase != "failed" || !hasAll(r.Outcome, "user "+u.name, "already has two access keys", foreign, ours.AccessKeyID, "rekey:iam-v1") {
			t.Fatalf("rotation with a foreign key: %s: %s", r.Phase, r.Outcome)
		}
		if acts := auditActions(w.auditOf(id)); !slices.Contains(acts, "rolled_back") {
			t.Fatalf("not rolled back: %v", acts)
		}
		if cur, gen := u.current(w, "iam"); cur != ours || gen != 1 {
			t.Fatalf("the sink holds generation %d %s after the roll-back, want iam-v1 %s", gen, cur.AccessKeyID, ours.AccessKeyID)
		}
		want := map[string]types.StatusType{foreign: types.StatusTypeActive, ours.AccessKeyID: types.StatusTypeActive}
		if got := u.keys(); !maps.Equal(got, want) {
			t.Fatalf("keys after the roll-back: %v, want %v", got, want)
		}
		d.stop()
		w.scanForSecrets()
	})

	// Killed after CreateAccessKey (and its description tag) but before
	// rekey recorded the key: the restarted daemon finds the orphan by the
	// tag rekey:iam-v2, deletes it, mints iam-v2 again and finishes with
	// exactly one access key, the delivered one.
	t.Run("crash_between_mint_and_record", func(t *testing.T) {
		t.Parallel()
		w, u := newWorld(t, true)
		d := w.start(env...)
		w.bootstrap("iam")
		old, _ := u.current(w, "iam")
		d.stop()
		d = w.start(append(env, "REKEY_FAILPOINT=minting:after")...)
		id := w.rotate("iam")
		if !d.waitKilled(t, 15*time.Second) {
			t.Fatal("the daemon was not killed at minting:after")
		}
		if !strings.Contains(readFile(t, d.log), `"failpoint":"minting:after"`) {
			t.Fatal("killed, but not at the failpoint")
		}
		var orphan string
		for k := range u.keys() {
			if k != old.AccessKeyID {
				orphan = k
			}
		}
		if orphan == "" || u.tags()[orphan] != "rekey:iam-v2" {
			t.Fatalf("after the crash: keys %v tags %v, want an orphan tagged rekey:iam-v2", u.keys(), u.tags())
		}
		start := time.Now()
		d = w.start(env...)
		if r := w.waitRotation(id, 15*time.Second); r.Phase != "done" {
			t.Fatalf("rotation ended %s: %s %s", r.Phase, r.Outcome, r.LastError)
		}
		t.Logf("restart to done, orphan %s deleted: %s", orphan, time.Since(start).Round(time.Millisecond))
		cur, _ := u.current(w, "iam")
		if got := u.keys(); len(got) != 1 || got[cur.AccessKeyID] != types.StatusTypeActive || cur.AccessKeyID == orphan {
			t.Fatalf("keys at the end: %v, want only the delivered %s (orphan %s)", got, cur.AccessKeyID, orphan)
		}
		if _, ok := u.tags()[orphan]; ok {
			t.Fatalf("the orphan's description tag is left: %v", u.tags())
		}
		var reaped bool
		for _, e := range w.auditOf(id) {
			reaped = reaped || (e.Action == "orphan.revoked" && e.Detail["issuer_id"] == orphan)
		}
		if !reaped {
			t.Fatalf("no orphan.revoked audit event for %s: %v", orphan, auditActions(w.auditOf(id)))
		}
		w.waitNotified(5*time.Second, "orphan", "iam-v2", orphan)
		d.stop()
		w.scanForSecrets()
	})
}
