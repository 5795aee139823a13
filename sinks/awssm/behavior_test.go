package awssm

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"

	"github.com/rekeyhq/rekey/rotator"
)

func TestRequestToken(t *testing.T) {
	a := requestToken("stage", "rot-1", 2, "v1")
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(a) {
		t.Fatalf("token %q is not UUID-shaped", a)
	}
	if a != requestToken("stage", "rot-1", 2, "v1") {
		t.Fatal("the token is not deterministic")
	}
	for _, other := range []string{
		requestToken("stage", "rot-2", 2, "v1"),
		requestToken("stage", "rot-1", 3, "v1"),
		requestToken("stage", "rot-1", 2, "v2"),
		requestToken("rollback", "rot-1", 2, "v1"),
	} {
		if other == a {
			t.Fatal("different writes share a token")
		}
	}
}

// TestLabelsThroughRotation follows the version labels through one
// rotation: AWSPENDING on a version whose id is the deterministic token,
// AWSCURRENT moved with AWSPREVIOUS following, labels removed by cleanup.
func TestLabelsThroughRotation(t *testing.T) {
	m := startMoto(t)
	c := sdkClient(t, m)
	s := newTestSink(t, testConfig(m, FormatString))
	ctx := context.Background()
	tgt := rotator.Target{Key: "billing", Path: "prod/billing"}
	d1, d2 := delivery(1, "ka_live_one", ""), delivery(2, "ka_live_two", "ka_live_one")
	if err := s.Stage(ctx, tgt, d1); err != nil {
		t.Fatal(err)
	}
	v1 := requestToken("create", d1.RotationID, 1, "")
	want := func(step string, exp map[string]string) {
		t.Helper()
		got := labels(t, c, "prod/billing")
		if len(got) != len(exp) {
			t.Fatalf("after %s: labels %v, want %v", step, got, exp)
		}
		for k, v := range exp {
			if got[k] != v {
				t.Fatalf("after %s: labels %v, want %v", step, got, exp)
			}
		}
	}
	want("first delivery", map[string]string{v1: "AWSCURRENT"})
	if err := s.Stage(ctx, tgt, d2); err != nil {
		t.Fatal(err)
	}
	v2 := requestToken("stage", d2.RotationID, 2, v1)
	want("stage", map[string]string{v1: "AWSCURRENT", v2: "AWSPENDING"})
	if err := s.Promote(ctx, tgt, d2); err != nil {
		t.Fatal(err)
	}
	want("promote", map[string]string{v2: "AWSCURRENT", v1: "AWSPREVIOUS"})
	if err := s.Cleanup(ctx, tgt, d2); err != nil {
		t.Fatal(err)
	}
	want("cleanup", map[string]string{v2: "AWSCURRENT"})
}

// TestCreateIfMissing: creation carries the managed tag, the configured
// tags and KMS key; without create_if_missing a missing secret is an error.
func TestCreateIfMissing(t *testing.T) {
	m := startMoto(t)
	c := sdkClient(t, m)
	ctx := context.Background()
	cfg := testConfig(m, FormatJSON)
	cfg.Tags = map[string]string{"team": "payments"}
	cfg.KMSKeyID = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	s := newTestSink(t, cfg)
	if err := s.Stage(ctx, rotator.Target{Key: "k", Path: "created"}, delivery(1, "ka_live_one", "")); err != nil {
		t.Fatal(err)
	}
	d, err := c.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String("created")})
	if err != nil {
		t.Fatal(err)
	}
	tags := map[string]string{}
	for _, tag := range d.Tags {
		tags[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
	}
	if tags["managed-by"] != "rekey" || tags["team"] != "payments" || aws.ToString(d.KmsKeyId) != cfg.KMSKeyID {
		t.Fatalf("created secret: tags %v, kms %q", tags, aws.ToString(d.KmsKeyId))
	}
	raw, _, _ := readCurrent(ctx, c, "created")
	if raw != `{"api_key":"ka_live_one"}` {
		t.Fatalf("created secret holds %d bytes of an unexpected shape", len(raw))
	}

	cfg.CreateIfMissing, cfg.KMSKeyID = false, ""
	err = newTestSink(t, cfg).Stage(ctx, rotator.Target{Key: "k", Path: "absent"}, delivery(1, "ka_live_one", ""))
	if !errors.Is(err, rotator.ErrNotFound) || !rotator.IsPermanent(err) || !strings.Contains(err.Error(), "absent") {
		t.Fatalf("Stage into a missing secret without create_if_missing = %v", err)
	}
}

// TestJSONFieldsAndEmptySecrets: in JSON format the other fields survive a
// rotation and Remove; a secret without a value, or without our field,
// takes the first delivery as current.
func TestJSONFieldsAndEmptySecrets(t *testing.T) {
	m := startMoto(t)
	c := sdkClient(t, m)
	ctx := context.Background()
	cfg := testConfig(m, FormatJSON)
	cfg.Adopt = true
	s := newTestSink(t, cfg)
	tgt := rotator.Target{Key: "k", Path: "app/config", Params: map[string]string{"json_field": "token"}}
	if _, err := c.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("app/config"), SecretString: aws.String(`{"db":"postgres://db","port":5432}`)}); err != nil {
		t.Fatal(err)
	}
	fields := func() map[string]any {
		raw, _, err := readCurrent(ctx, c, "app/config")
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		_ = json.Unmarshal([]byte(raw), &doc)
		return doc
	}
	if err := s.Stage(ctx, tgt, delivery(1, "ka_live_one", "")); err != nil {
		t.Fatal(err)
	}
	if doc := fields(); doc["token"] != "ka_live_one" || doc["db"] != "postgres://db" || doc["port"] != 5432.0 {
		t.Fatalf("after the first delivery: fields %v", keys(doc))
	}
	d2 := delivery(2, "ka_live_two", "ka_live_one")
	for _, step := range []func(context.Context, rotator.Target, rotator.Delivery) error{s.Stage, s.Promote, s.Cleanup} {
		if err := step(ctx, tgt, d2); err != nil {
			t.Fatal(err)
		}
	}
	if doc := fields(); doc["token"] != "ka_live_two" || doc["db"] != "postgres://db" {
		t.Fatalf("after a rotation: fields %v", keys(doc))
	}
	if err := s.Remove(ctx, tgt); err != nil {
		t.Fatal(err)
	}
	if doc := fields(); doc["token"] != nil || doc["db"] != "postgres://db" {
		t.Fatalf("after Remove: fields %v", keys(doc))
	}
	if st, err := s.Inspect(ctx, tgt); err != nil || st.Current != "" || st.Previous != "" || st.Pending != "" {
		t.Fatalf("Inspect after Remove = %+v, %v", st, err)
	}

	// A secret created without a value.
	if _, err := c.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("empty"),
		Tags: nil}); err != nil {
		t.Fatal(err)
	}
	if err := s.Stage(ctx, rotator.Target{Key: "e", Path: "empty"}, delivery(1, "ka_live_e", "")); err != nil {
		t.Fatal(err)
	}
	if raw, _, _ := readCurrent(ctx, c, "empty"); raw != `{"api_key":"ka_live_e"}` {
		t.Fatal("a secret without a value did not take the first delivery as current")
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestDeletedSecret: a secret scheduled for deletion is refused by Stage
// and a missing one is fine for Remove.
func TestDeletedSecret(t *testing.T) {
	m := startMoto(t)
	ctx := context.Background()
	cfg := testConfig(m, FormatString)
	cfg.RecoveryWindowDays = 7
	s := newTestSink(t, cfg)
	tgt := rotator.Target{Key: "k", Path: "doomed"}
	if err := s.Stage(ctx, tgt, delivery(1, "ka_live_one", "")); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, tgt); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, tgt); err != nil {
		t.Fatalf("Remove replay: %v", err)
	}
	err := s.Stage(ctx, tgt, delivery(2, "ka_live_two", ""))
	if err == nil || !rotator.IsPermanent(err) || !strings.Contains(err.Error(), "scheduled for deletion") {
		t.Fatalf("Stage into a secret scheduled for deletion = %v", err)
	}
}

// TestAssumeRole: with assume_role_arn the sink signs with credentials from
// sts:AssumeRole (moto's STS), not the base ones.
func TestAssumeRole(t *testing.T) {
	m := startMoto(t)
	cfg := testConfig(m, FormatString)
	cfg.AssumeRoleARN = "arn:aws:iam::123456789012:role/rekey"
	s := newTestSink(t, cfg)
	ctx := context.Background()
	creds, err := s.creds.Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if creds.AccessKeyID == "test" || creds.SessionToken == "" || creds.Source != "AssumeRoleProvider" {
		t.Fatalf("credentials are not the assumed role's: key %s…, source %s", creds.AccessKeyID[:4], creds.Source)
	}
	if err := s.Stage(ctx, rotator.Target{Key: "k", Path: "assumed"}, delivery(1, "ka_live_one", "")); err != nil {
		t.Fatal(err)
	}
}

func TestClassify(t *testing.T) {
	const leaked = "ka_live_secretvalue"
	cases := map[string]struct {
		code      string
		permanent bool
		reason    rotator.Reason
		is        error
	}{
		"not found": {code: "ResourceNotFoundException", permanent: true, reason: rotator.ReasonInvalid, is: rotator.ErrNotFound},
		"denied":    {code: "AccessDeniedException", permanent: true, reason: rotator.ReasonAuth},
		"bad creds": {code: "UnrecognizedClientException", permanent: true, reason: rotator.ReasonAuth},
		"throttled": {code: "ThrottlingException", reason: rotator.ReasonRateLimited},
		"internal":  {code: "InternalServiceError", reason: rotator.ReasonTransient},
		"exists":    {code: "ResourceExistsException", reason: rotator.ReasonConflict, is: rotator.ErrConflict},
		"invalid":   {code: "InvalidRequestException", permanent: true, reason: rotator.ReasonInvalid},
		"unknown":   {code: "SomethingNew", reason: rotator.ReasonTransient},
		"deadline":  {reason: rotator.ReasonTransient, is: context.DeadlineExceeded},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var in error = &smithy.GenericAPIError{Code: tc.code, Message: "value " + leaked + " rejected"}
			if tc.code == "" {
				in = &smithy.OperationError{ServiceID: "Secrets Manager", OperationName: "PutSecretValue", Err: context.DeadlineExceeded}
			}
			err := classify("awssm: stage prod/x", in)
			if rotator.IsPermanent(err) != tc.permanent || rotator.ReasonOf(err) != tc.reason {
				t.Fatalf("classify(%s) = %v: permanent %v reason %q", name, err, rotator.IsPermanent(err), rotator.ReasonOf(err))
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("classify(%s) = %v does not wrap %v", name, err, tc.is)
			}
			if strings.Contains(err.Error(), leaked) || !strings.HasPrefix(err.Error(), "awssm: stage prod/x") {
				t.Fatalf("classify(%s) text = %q", name, err)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	cases := map[string]struct {
		edit func(*Config)
		want string
	}{
		"defaults":              {edit: func(*Config) {}},
		"json":                  {edit: func(c *Config) { c.Format = FormatJSON }},
		"bad format":            {edit: func(c *Config) { c.Format = "yaml" }, want: "format: "},
		"json without field":    {edit: func(c *Config) { c.Format, c.JSONField = FormatJSON, "" }, want: "json_field: "},
		"bad endpoint":          {edit: func(c *Config) { c.Endpoint = "localhost:4566" }, want: "endpoint: "},
		"bad role":              {edit: func(c *Config) { c.AssumeRoleARN = "rekey" }, want: "assume_role_arn: "},
		"kms without creation":  {edit: func(c *Config) { c.CreateIfMissing, c.KMSKeyID = false, "k" }, want: "kms_key_id: "},
		"tag clash":             {edit: func(c *Config) { c.Tags = map[string]string{"managed-by": "x"} }, want: "tags: "},
		"no managed tag":        {edit: func(c *Config) { c.ManagedTagValue = "" }, want: "managed_tag_key: "},
		"short recovery window": {edit: func(c *Config) { c.RecoveryWindowDays = 3 }, want: "recovery_window_days: "},
		"no timeout":            {edit: func(c *Config) { c.Timeout = 0 }, want: "timeout: "},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate = %v", err)
			case tc.want != "" && (err == nil || !strings.Contains("\n"+err.Error(), "\n"+tc.want)):
				t.Fatalf("Validate = %v, want an error starting %q", err, tc.want)
			}
		})
	}
}
