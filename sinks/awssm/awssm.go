// Package awssm is the sink that delivers keys to AWS Secrets Manager the way
// Secrets Manager's own rotation does: staging puts a new version labelled
// AWSPENDING (with a deterministic ClientRequestToken, so a replay cannot
// create a second version), promotion moves AWSCURRENT onto it — AWSPREVIOUS
// follows on its own — and cleanup removes the leftover labels. Moving
// AWSCURRENT names the version it is taken from, which makes it a
// check-and-set: when another writer put a new current version in between,
// the step is redone from a fresh read, and in JSON format the other fields
// of that foreign version are carried into ours so that nothing is
// clobbered. Every read names its VersionStage. rekey owns a secret only
// when it carries the managed tag (managed-by = rekey) or the sink adopts.
// The steps of one rotation that follow each other act on the labels the
// previous one described or set instead of describing again (lastState),
// and a version's fingerprint is read once: the id of a version rekey puts
// is its ClientRequestToken, known before the call (fingerprints). An
// emergency's Replace puts the new value and moves AWSCURRENT onto it.
//
// IAM: secretsmanager:DescribeSecret, GetSecretValue, PutSecretValue,
// UpdateSecretVersionStage and TagResource; CreateSecret with
// create_if_missing, DeleteSecret for Remove; sts:AssumeRole with
// assume_role_arn; kms:GenerateDataKey and kms:Decrypt on a customer key.
package awssm

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/rekeyhq/rekey/rotator"
)

// Staging labels.
const (
	stageCurrent  = "AWSCURRENT"
	stagePending  = "AWSPENDING"
	stagePrevious = "AWSPREVIOUS"
)

// maxAttempts bounds how often one call re-reads and redoes its work after
// another writer changed the secret under it.
const maxAttempts = 5

// secretsManager is the part of the SDK client the sink uses.
type secretsManager interface {
	DescribeSecret(context.Context, *sm.DescribeSecretInput, ...func(*sm.Options)) (*sm.DescribeSecretOutput, error)
	GetSecretValue(context.Context, *sm.GetSecretValueInput, ...func(*sm.Options)) (*sm.GetSecretValueOutput, error)
	CreateSecret(context.Context, *sm.CreateSecretInput, ...func(*sm.Options)) (*sm.CreateSecretOutput, error)
	PutSecretValue(context.Context, *sm.PutSecretValueInput, ...func(*sm.Options)) (*sm.PutSecretValueOutput, error)
	UpdateSecretVersionStage(context.Context, *sm.UpdateSecretVersionStageInput, ...func(*sm.Options)) (*sm.UpdateSecretVersionStageOutput, error)
	TagResource(context.Context, *sm.TagResourceInput, ...func(*sm.Options)) (*sm.TagResourceOutput, error)
	DeleteSecret(context.Context, *sm.DeleteSecretInput, ...func(*sm.Options)) (*sm.DeleteSecretOutput, error)
}

// Sink writes keys to Secrets Manager.
type Sink struct {
	cfg    Config
	api    secretsManager
	creds  aws.CredentialsProvider
	logger *slog.Logger
	last   lastState
	fps    fingerprints

	// hook, when set, runs once right before the next write (tests use it
	// to interleave a concurrent writer).
	hook atomic.Pointer[func()]
}

// New returns a Secrets Manager sink. It resolves no credentials and makes
// no request: the first call does.
func New(cfg Config, logger *slog.Logger) (*Sink, error) {
	return newSink(cfg, logger)
}

// newSink builds the sink; tests pass extra SDK options.
func newSink(cfg Config, logger *slog.Logger, extra ...func(*config.LoadOptions) error) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts := []func(*config.LoadOptions) error{
		config.WithRetryMaxAttempts(1), // the engine owns retries
	}
	opts = append(opts, extra...)
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	awsCfg, err := config.LoadDefaultConfig(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("region: load the AWS configuration: %w", err)
	}
	endpoint := func(base **string) {
		if cfg.Endpoint != "" {
			*base = aws.String(cfg.Endpoint)
		}
	}
	if cfg.AssumeRoleARN != "" {
		stsClient := sts.NewFromConfig(awsCfg, func(o *sts.Options) { endpoint(&o.BaseEndpoint) })
		awsCfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsClient, cfg.AssumeRoleARN,
			func(o *stscreds.AssumeRoleOptions) { o.RoleSessionName = "rekey" }))
	}
	client := sm.NewFromConfig(awsCfg, func(o *sm.Options) { endpoint(&o.BaseEndpoint) })
	return &Sink{cfg: cfg, api: client, creds: awsCfg.Credentials, logger: logger.With("sink", "awssm")}, nil
}

// ref is a target resolved against the configuration.
type ref struct {
	id     string // secret name or ARN
	format string
	field  string
}

// resolve maps a target to its secret id and value format.
func (s *Sink) resolve(t rotator.Target) (ref, error) {
	r := ref{id: t.Path, format: s.cfg.Format, field: s.cfg.JSONField}
	if r.id == "" {
		r.id = t.Key
	}
	if v := t.Params["format"]; v != "" {
		r.format = v
	}
	for _, name := range []string{"field", "json_field"} {
		if v := t.Params[name]; v != "" {
			r.field = v
		}
	}
	switch {
	case r.id == "":
		return r, rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("awssm: key %q: no secret id", t.Key))
	case r.format != FormatString && r.format != FormatJSON:
		return r, rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("awssm: %s: format must be string or json", r.id))
	case r.format == FormatJSON && r.field == "":
		return r, rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("awssm: %s: no json field", r.id))
	}
	return r, nil
}

// requestToken derives a ClientRequestToken, UUID-shaped (36 characters;
// AWS wants 32–64), from the parts of a write: which step, the rotation id,
// the generation and the version the new value is based on. A replay of the
// same write sends the same token, so Secrets Manager creates no second
// version; a write on a different base (after another writer moved
// AWSCURRENT) sends a different token, as its content differs.
func requestToken(step, rotationID string, generation int, base string) string {
	sum := sha256.Sum256([]byte(strings.Join([]string{"rekey", step, rotationID, strconv.Itoa(generation), base}, "\x00")))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x50 // name-based UUID layout
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func (s *Sink) beforeWrite() {
	if f := s.hook.Swap(nil); f != nil {
		(*f)()
	}
}

// Interface guards.
var (
	_ rotator.Sink          = (*Sink)(nil)
	_ rotator.PendingReader = (*Sink)(nil)
	_ rotator.ValueReader   = (*Sink)(nil)
	_ rotator.Remover       = (*Sink)(nil)
	_ rotator.Replacer      = (*Sink)(nil)
)
