package awsiam_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/rekeyhq/rekey/issuers/awsiam"
	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/testing/testenv"
)

// env is a moto_server with one IAM user and an admin client on it.
type env struct {
	moto  *testenv.MotoServer
	admin *iam.Client
	user  string
	logs  *strings.Builder
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{moto: testenv.Moto(t), user: "ci-deployer"}
	testenv.SetAWSEnv(t)
	e.admin = iamClient(e.moto.Endpoint, "test", "test")
	e.reset(t)
	return e
}

// reset wipes moto and creates the user again.
func (e *env) reset(t *testing.T) {
	t.Helper()
	if err := e.moto.Reset(); err != nil {
		t.Fatal(err)
	}
	e.logs = &strings.Builder{}
	if _, err := e.admin.CreateUser(context.Background(), &iam.CreateUserInput{UserName: aws.String(e.user)}); err != nil {
		t.Fatalf("create user: %v", err)
	}
}

func iamClient(endpoint, id, secret string) *iam.Client {
	return iam.New(iam.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(id, secret, ""),
	})
}

func (e *env) issuer(t *testing.T, edit func(*awsiam.Config)) *awsiam.Issuer {
	t.Helper()
	cfg := awsiam.DefaultConfig()
	cfg.UserName = e.user
	cfg.Endpoint = e.moto.Endpoint
	if edit != nil {
		edit(&cfg)
	}
	is, err := awsiam.New(cfg, slog.New(slog.NewTextHandler(e.logs, nil)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return is
}

type keyInfo struct {
	status types.StatusType
	desc   string
}

// keys returns the user's access keys with their description tags.
func (e *env) keys(t *testing.T) map[string]keyInfo {
	t.Helper()
	ctx := context.Background()
	out, err := e.admin.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String(e.user)})
	if err != nil {
		t.Fatal(err)
	}
	tags := e.tags(t)
	keys := map[string]keyInfo{}
	for _, k := range out.AccessKeyMetadata {
		id := aws.ToString(k.AccessKeyId)
		keys[id] = keyInfo{status: k.Status, desc: tags[id]}
	}
	return keys
}

func (e *env) tags(t *testing.T) map[string]string {
	t.Helper()
	out, err := e.admin.ListUserTags(context.Background(), &iam.ListUserTagsInput{UserName: aws.String(e.user)})
	if err != nil {
		t.Fatal(err)
	}
	tags := map[string]string{}
	for _, tg := range out.Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	return tags
}

// createKey creates a key behind rekey's back (a person, or a crash).
func (e *env) createKey(t *testing.T) string {
	t.Helper()
	out, err := e.admin.CreateAccessKey(context.Background(), &iam.CreateAccessKeyInput{UserName: aws.String(e.user)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.AccessKey.AccessKeyId)
}

func mintReq(name string) rotator.MintRequest {
	return rotator.MintRequest{Key: "ci", Name: name, Generation: 1, RotationID: "rot-1"}
}

type creds struct {
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string `json:"SecretAccessKey"`
}

func decode(t *testing.T, s rotator.Secret) creds {
	t.Helper()
	var c creds
	if err := json.Unmarshal([]byte(s.Reveal()), &c); err != nil {
		t.Fatalf("delivered secret is not JSON: %v", err)
	}
	return c
}

func assertNoLeak(t *testing.T, err error, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if err != nil && s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("error leaks a secret: %v", err)
		}
	}
}

func (e *env) assertLogsClean(t *testing.T, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(e.logs.String(), s) {
			t.Errorf("logs leak a secret:\n%s", e.logs)
		}
	}
}

func TestMintRevoke(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tests := map[string]struct {
		deleteOnRevoke bool
		afterRevoke    types.StatusType // "" when deleted
	}{
		"delete on revoke": {deleteOnRevoke: true},
		"deactivate only":  {deleteOnRevoke: false, afterRevoke: types.StatusTypeInactive},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e.reset(t)
			is := e.issuer(t, func(c *awsiam.Config) { c.DeleteOnRevoke = tc.deleteOnRevoke })

			m, err := is.Mint(ctx, mintReq("ci-v1"))
			if err != nil {
				t.Fatalf("Mint: %v", err)
			}
			c := decode(t, m.Secret)
			if c.AccessKeyID != m.ID || !strings.HasPrefix(m.ID, "AKIA") || c.SecretAccessKey == "" {
				t.Fatalf("Mint = id %s, delivered id %s", m.ID, c.AccessKeyID)
			}
			keys := e.keys(t)
			if want := (keyInfo{types.StatusTypeActive, "rekey:ci-v1"}); len(keys) != 1 || keys[m.ID] != want {
				t.Fatalf("keys after mint = %v, want %s %v", keys, m.ID, want)
			}
			if _, ok := e.tags(t)[awsiam.IntentPrefix+"ci-v1"]; ok {
				t.Error("the mint intent tag was left behind")
			}

			ref := rotator.CredentialRef{Key: "ci", Name: "ci-v1", ID: m.ID}
			for i := range 2 { // the second revoke is a replay
				if err := is.Revoke(ctx, ref); err != nil {
					assertNoLeak(t, err, c.SecretAccessKey)
					t.Fatalf("Revoke #%d: %v", i+1, err)
				}
			}
			keys = e.keys(t)
			if tc.afterRevoke == "" {
				if len(keys) != 0 {
					t.Fatalf("keys after revoke = %v, want none", keys)
				}
				if _, ok := e.tags(t)[m.ID]; ok {
					t.Error("the description tag of the deleted key was left behind")
				}
			} else if keys[m.ID].status != tc.afterRevoke {
				t.Fatalf("key after revoke = %v, want %s", keys[m.ID], tc.afterRevoke)
			}
			e.assertLogsClean(t, c.SecretAccessKey)
		})
	}
}

func TestFormatSecretAndLastUsed(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	is := e.issuer(t, func(c *awsiam.Config) { c.Format = awsiam.FormatSecret })
	m, err := is.Mint(ctx, mintReq("ci-v1"))
	if err != nil {
		t.Fatalf("Mint: %v", err)
	}
	if strings.Contains(m.Secret.Reveal(), "{") || len(m.Secret.Reveal()) < 20 {
		t.Fatalf("format secret delivered something else than the secret access key")
	}
	before, err := is.LastUsed(ctx, m.ID)
	if err != nil || !before.IsZero() {
		t.Fatalf("LastUsed of an unused key = %v, %v; want zero", before, err)
	}
	// Use the key: moto records the use of a key that signs a request.
	user := iamClient(e.moto.Endpoint, m.ID, m.Secret.Reveal())
	if _, err := user.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String(e.user)}); err != nil {
		t.Fatalf("call with the new key: %v", err)
	}
	used, err := is.LastUsed(ctx, m.ID)
	if err != nil || used.IsZero() || time.Since(used) > time.Hour {
		t.Fatalf("LastUsed after a call = %v, %v; want about now", used, err)
	}
	_, err = is.LastUsed(ctx, "AKIAUNKNOWNUNKNOWN00")
	if !errors.Is(err, rotator.ErrNotFound) || !rotator.IsPermanent(err) {
		t.Errorf("LastUsed(unknown) = %v, want a permanent ErrNotFound", err)
	}
	e.assertLogsClean(t, m.Secret.Reveal())
}

// TestTwoKeysRefusal: IAM allows two keys per user (moto enforces it with
// LimitExceeded); rekey refuses before, naming both, and deletes neither.
func TestTwoKeysRefusal(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	is := e.issuer(t, nil)
	a := e.createKey(t)
	m, err := is.Mint(ctx, mintReq("ci-v1"))
	if err != nil {
		t.Fatalf("Mint beside one key: %v", err)
	}
	_, err = is.Mint(ctx, mintReq("ci-v2"))
	if err == nil || !rotator.IsPermanent(err) || rotator.ReasonOf(err) != rotator.ReasonNotManaged {
		t.Fatalf("Mint with two keys: %v, want a permanent not_managed refusal", err)
	}
	for _, want := range []string{"user ci-deployer already has two access keys", a + " [no description, Active]", m.ID + " [rekey:ci-v1, Active]", "rekey will not delete a key it did not mint"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not contain %q", err, want)
		}
	}
	assertNoLeak(t, err, decode(t, m.Secret).SecretAccessKey)
	if keys := e.keys(t); len(keys) != 2 {
		t.Errorf("keys after the refusal = %v, want the two untouched", keys)
	}
	if _, ok := e.tags(t)[awsiam.IntentPrefix+"ci-v2"]; ok {
		t.Error("a refused mint left an intent tag")
	}

	// moto's own limit, reached behind rekey's back, is permanent too.
	_, err = e.admin.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(e.user)})
	if err == nil {
		t.Fatal("moto accepted a third access key")
	}
}

func TestFindByName(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	is := e.issuer(t, nil)
	find := func(name string) ([]string, error) { return is.FindByName(ctx, "ci", name) }

	// Minted, never recorded: the engine crashed before the record.
	lost, err := is.Mint(ctx, mintReq("ci-v2"))
	if err != nil {
		t.Fatal(err)
	}
	if ids, err := find("ci-v2"); err != nil || !slices.Equal(ids, []string{lost.ID}) {
		t.Fatalf("FindByName(ci-v2) = %v, %v; want [%s]", ids, err, lost.ID)
	}
	if ids, err := find("ci-v3"); err != nil || ids == nil || len(ids) != 0 {
		t.Fatalf("FindByName(ci-v3) = %#v, %v; want empty", ids, err)
	}
	if err := is.Revoke(ctx, rotator.CredentialRef{Name: "ci-v2", ID: lost.ID}); err != nil {
		t.Fatal(err)
	}
	if ids, err := find("ci-v2"); err != nil || len(ids) != 0 {
		t.Fatalf("FindByName after revoke = %v, %v; want empty", ids, err)
	}

	// A crash between CreateAccessKey and the description tag: the intent
	// is on the user, the key has no description.
	tag := func(k, v string) {
		t.Helper()
		if _, err := e.admin.TagUser(ctx, &iam.TagUserInput{UserName: aws.String(e.user), Tags: []types.Tag{{Key: aws.String(k), Value: aws.String(v)}}}); err != nil {
			t.Fatal(err)
		}
	}
	tag(awsiam.IntentPrefix+"ci-v3", time.Now().UTC().Format(time.RFC3339))
	orphan := e.createKey(t)
	_, err = find("ci-v3")
	if err == nil || rotator.IsPermanent(err) || rotator.ReasonOf(err) != rotator.ReasonInvariant || !strings.Contains(err.Error(), orphan) {
		t.Fatalf("FindByName with a suspected orphan = %v, want a retryable invariant error naming %s", err, orphan)
	}
	// Other names are not confused by it.
	if ids, err := find("ci-v4"); err != nil || len(ids) != 0 {
		t.Fatalf("FindByName(ci-v4) = %v, %v", ids, err)
	}
	// An intent long before the key was created is not about it.
	tag(awsiam.IntentPrefix+"ci-v3", time.Now().Add(-2*time.Hour).UTC().Format(time.RFC3339))
	if ids, err := find("ci-v3"); err != nil || len(ids) != 0 {
		t.Fatalf("FindByName with a stale intent = %v, %v; want empty", ids, err)
	}

	// Without user_name on the issuer, FindByName cannot know the user: it
	// says so in the log and finds nothing.
	noUser := e.issuer(t, func(c *awsiam.Config) { c.UserName = "" })
	if ids, err := noUser.FindByName(ctx, "ci", "ci-v3"); err != nil || len(ids) != 0 {
		t.Errorf("FindByName without user_name = %v, %v; want nothing", ids, err)
	}
	if !strings.Contains(e.logs.String(), "cannot look for orphans") {
		t.Errorf("no warning logged:\n%s", e.logs)
	}
}

func TestPerKeyUserAndErrors(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	is := e.issuer(t, func(c *awsiam.Config) { c.UserName = "" })
	req := mintReq("ci-v1")

	_, err := is.Mint(ctx, req)
	if err == nil || !rotator.IsPermanent(err) || !strings.Contains(err.Error(), "no user") {
		t.Fatalf("Mint without a user = %v", err)
	}
	req.Params = map[string]any{"user_name": e.user}
	m, err := is.Mint(ctx, req)
	if err != nil {
		t.Fatalf("Mint with params.user_name: %v", err)
	}
	if err := is.Revoke(ctx, rotator.CredentialRef{Name: "ci-v1", ID: m.ID, Params: req.Params}); err != nil {
		t.Fatalf("Revoke with params.user_name: %v", err)
	}

	req.Params = map[string]any{"user_name": "nobody"}
	_, err = is.Mint(ctx, req)
	if err == nil || !rotator.IsPermanent(err) || rotator.ReasonOf(err) != rotator.ReasonInvalid || !strings.Contains(err.Error(), "NoSuchEntity") {
		t.Fatalf("Mint for a missing user = %v, want permanent invalid NoSuchEntity", err)
	}
	req.Params = nil
	req.Name = "bad name!"
	_, err = is.Mint(ctx, req)
	if err == nil || !rotator.IsPermanent(err) {
		t.Fatalf("Mint with a name IAM tags refuse = %v", err)
	}
}

func TestAssumeRole(t *testing.T) {
	e := newEnv(t)
	is := e.issuer(t, func(c *awsiam.Config) { c.AssumeRoleARN = "arn:aws:iam::123456789012:role/rekey" })
	m, err := is.Mint(context.Background(), mintReq("ci-v1"))
	if err != nil {
		t.Fatalf("Mint with an assumed role: %v", err)
	}
	if len(e.keys(t)) != 1 || m.ID == "" {
		t.Fatalf("keys = %v", e.keys(t))
	}
}

func TestServerDownIsTransient(t *testing.T) {
	e := newEnv(t)
	is := e.issuer(t, nil)
	if err := e.moto.Stop(); err != nil {
		t.Fatal(err)
	}
	_, err := is.Mint(context.Background(), mintReq("ci-v1"))
	if err == nil || rotator.IsPermanent(err) || rotator.ReasonOf(err) != rotator.ReasonTransient {
		t.Fatalf("Mint with moto down = %v, want a transient error", err)
	}
	err = is.Revoke(context.Background(), rotator.CredentialRef{Name: "ci-v1", ID: "AKIAEXAMPLEEXAMPLE00"})
	if err == nil || rotator.IsPermanent(err) {
		t.Fatalf("Revoke with moto down = %v, want a retryable error", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := map[string]struct {
		cfg  awsiam.Config
		want []string
	}{
		"defaults":     {cfg: awsiam.DefaultConfig()},
		"full":         {cfg: awsiam.Config{UserName: "ci+bot@x", Region: "eu-west-1", Endpoint: "http://127.0.0.1:5000", AssumeRoleARN: "arn:aws:iam::1:role/r", Format: "secret"}},
		"bad user":     {cfg: awsiam.Config{UserName: "ci deployer"}, want: []string{"user_name: "}},
		"bad endpoint": {cfg: awsiam.Config{Endpoint: "127.0.0.1:5000"}, want: []string{"endpoint: must be an http(s) URL"}},
		"bad role":     {cfg: awsiam.Config{AssumeRoleARN: "rekey-role"}, want: []string{"assume_role_arn: "}},
		"bad format":   {cfg: awsiam.Config{Format: "env"}, want: []string{"format: "}},
		"all bad": {
			cfg:  awsiam.Config{UserName: "a/b", Endpoint: "x", AssumeRoleARN: "y", Format: "z"},
			want: []string{"user_name: ", "endpoint: ", "assume_role_arn: ", "format: "},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: nil, want %v", tc.want)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Fatalf("errors = %v, want %v", lines, tc.want)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("error %q, want prefix %q", lines[i], w)
				}
			}
		})
	}
}
