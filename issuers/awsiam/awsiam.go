// Package awsiam issues AWS IAM user access keys. Mint refuses when the user
// already holds two keys (IAM's limit) rather than delete one it did not
// mint, creates a key and labels it with the console's own convention — a
// user tag whose key is the access key id and whose value is the key's
// description, here "rekey:<name>" — so that FindByName can find a key a
// crash left unrecorded. Revoke deactivates, then deletes (unless
// delete_on_revoke is false). The secret delivered to sinks is JSON holding
// the access key id and the secret access key, or the secret alone.
//
// The window: a crash after CreateAccessKey and before the description tag
// leaves a key nobody can attribute for sure. Mint therefore tags the user
// "rekey:minting:<name>" = <time> before creating the key; FindByName
// reports an untagged key created near that time as a suspected orphan
// (a retryable invariant error naming it) instead of silently missing it or
// revoking a key that a person may have created.
package awsiam

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/rekeyhq/rekey/rotator"
)

// API is the part of the IAM client the issuer uses.
type API interface {
	ListAccessKeys(ctx context.Context, in *iam.ListAccessKeysInput, opts ...func(*iam.Options)) (*iam.ListAccessKeysOutput, error)
	CreateAccessKey(ctx context.Context, in *iam.CreateAccessKeyInput, opts ...func(*iam.Options)) (*iam.CreateAccessKeyOutput, error)
	UpdateAccessKey(ctx context.Context, in *iam.UpdateAccessKeyInput, opts ...func(*iam.Options)) (*iam.UpdateAccessKeyOutput, error)
	DeleteAccessKey(ctx context.Context, in *iam.DeleteAccessKeyInput, opts ...func(*iam.Options)) (*iam.DeleteAccessKeyOutput, error)
	GetAccessKeyLastUsed(ctx context.Context, in *iam.GetAccessKeyLastUsedInput, opts ...func(*iam.Options)) (*iam.GetAccessKeyLastUsedOutput, error)
	TagUser(ctx context.Context, in *iam.TagUserInput, opts ...func(*iam.Options)) (*iam.TagUserOutput, error)
	UntagUser(ctx context.Context, in *iam.UntagUserInput, opts ...func(*iam.Options)) (*iam.UntagUserOutput, error)
	ListUserTags(ctx context.Context, in *iam.ListUserTagsInput, opts ...func(*iam.Options)) (*iam.ListUserTagsOutput, error)
}

// Tag conventions.
const (
	// DescriptionPrefix starts the value of the description tag (key: the
	// access key id) of a key rekey minted.
	DescriptionPrefix = "rekey:"
	// IntentPrefix starts the key of the tag written just before
	// CreateAccessKey; its value is the time, RFC 3339.
	IntentPrefix = "rekey:minting:"
)

// Issuer issues IAM access keys.
type Issuer struct {
	log    *slog.Logger
	api    API
	user   string
	delete bool
	format string
	now    func() time.Time
}

// New builds the issuer with credentials from the default chain (and the
// role to assume, if any). No AWS call is made here: credentials are
// resolved on first use.
func New(cfg Config, logger *slog.Logger) (*Issuer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	region := cfg.Region
	if region == "" {
		region = DefaultRegion
	}
	// LoadDefaultConfig reads the environment and shared files only; the
	// context bounds nothing here.
	awsCfg, err := awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithRegion(region))
	if err != nil {
		return nil, fmt.Errorf("awsiam: load AWS configuration: %w", err)
	}
	if cfg.AssumeRoleARN != "" {
		stsClient := sts.NewFromConfig(awsCfg, func(o *sts.Options) {
			if cfg.Endpoint != "" {
				o.BaseEndpoint = aws.String(cfg.Endpoint)
			}
		})
		awsCfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsClient, cfg.AssumeRoleARN,
			func(o *stscreds.AssumeRoleOptions) { o.RoleSessionName = "rekey" }))
	}
	client := iam.NewFromConfig(awsCfg, func(o *iam.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	return NewWithAPI(cfg, client, logger)
}

// NewWithAPI builds the issuer on an IAM client of the caller's.
func NewWithAPI(cfg Config, api API, logger *slog.Logger) (*Issuer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	format := cfg.Format
	if format == "" {
		format = FormatJSON
	}
	return &Issuer{
		log:    logger.With("issuer", "awsiam"),
		api:    api,
		user:   cfg.UserName,
		delete: cfg.DeleteOnRevoke,
		format: format,
		now:    time.Now,
	}, nil
}

// userFor returns the user of a key: params' user_name, else the config's.
func (is *Issuer) userFor(params map[string]any) (string, error) {
	u := is.user
	if v, ok := params["user_name"]; ok {
		s, isString := v.(string)
		if !isString || !validUserName(s) {
			return "", rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("awsiam: params.user_name must be an IAM user name"))
		}
		u = s
	}
	if u == "" {
		return "", rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("awsiam: no user: set user_name on the issuer or in the key's params"))
	}
	return u, nil
}

// Mint creates an access key for the user. See the package doc for the
// tags it writes around CreateAccessKey.
func (is *Issuer) Mint(ctx context.Context, req rotator.MintRequest) (rotator.Minted, error) {
	user, err := is.userFor(req.Params)
	if err != nil {
		return rotator.Minted{}, err
	}
	what := fmt.Sprintf("awsiam: mint %s for user %s", req.Name, user)
	if err := checkTagText(req.Name); err != nil {
		return rotator.Minted{}, rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("%s: name %w", what, err))
	}
	keys, err := is.listKeys(ctx, user)
	if err != nil {
		return rotator.Minted{}, classify(what+": list access keys", err)
	}
	if len(keys) >= 2 {
		return rotator.Minted{}, rotator.PermanentReason(rotator.ReasonNotManaged,
			fmt.Errorf("awsiam: user %s already has two access keys (%s); rekey will not delete a key it did not mint",
				user, is.describeKeys(ctx, user, keys)))
	}

	intent := IntentPrefix + req.Name
	if _, err := is.api.TagUser(ctx, &iam.TagUserInput{UserName: aws.String(user), Tags: []types.Tag{{
		Key: aws.String(intent), Value: aws.String(is.now().UTC().Format(time.RFC3339)),
	}}}); err != nil {
		return rotator.Minted{}, classify(what+": tag intent", err)
	}
	out, err := is.api.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(user)})
	if err != nil {
		return rotator.Minted{}, classify(what+": create access key", err)
	}
	if out.AccessKey == nil || aws.ToString(out.AccessKey.AccessKeyId) == "" || aws.ToString(out.AccessKey.SecretAccessKey) == "" {
		return rotator.Minted{}, rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("%s: create access key: empty answer", what))
	}
	id := aws.ToString(out.AccessKey.AccessKeyId)
	secret, err := is.encode(id, aws.ToString(out.AccessKey.SecretAccessKey))
	if err != nil {
		return rotator.Minted{}, rotator.PermanentReason(rotator.ReasonInternal, fmt.Errorf("%s: encode the secret of %s", what, id))
	}

	// Label the key, then drop the intent. A failure here is logged, not
	// returned: the key exists and the engine records its id now; only
	// crash recovery needed the label.
	if _, err := is.api.TagUser(ctx, &iam.TagUserInput{UserName: aws.String(user), Tags: []types.Tag{{
		Key: aws.String(id), Value: aws.String(DescriptionPrefix + req.Name),
	}}}); err != nil {
		is.log.WarnContext(ctx, "could not tag the new access key; FindByName will report it as a suspected orphan",
			"user", user, "name", req.Name, "id", id, "err", classify("tag", err))
	} else if _, err := is.api.UntagUser(ctx, &iam.UntagUserInput{UserName: aws.String(user), TagKeys: []string{intent}}); err != nil {
		is.log.WarnContext(ctx, "could not remove the mint intent tag", "user", user, "name", req.Name, "err", classify("untag", err))
	}
	is.log.InfoContext(ctx, "minted access key", "key", req.Key, "name", req.Name, "user", user, "id", id,
		"fingerprint", rotator.ShortFingerprint(secret.Fingerprint()))
	return rotator.Minted{ID: id, Secret: secret}, nil
}

// encode formats the delivered secret.
func (is *Issuer) encode(id, secretKey string) (rotator.Secret, error) {
	if is.format == FormatSecret {
		return rotator.NewSecret(secretKey), nil
	}
	b, err := json.Marshal(struct {
		AccessKeyID     string `json:"AccessKeyId"`
		SecretAccessKey string `json:"SecretAccessKey"`
	}{id, secretKey})
	if err != nil {
		return rotator.Secret{}, err
	}
	return rotator.NewSecret(string(b)), nil
}

// Revoke deactivates ref.ID, then deletes it and its description tag when
// delete_on_revoke. A key (or user) that no longer exists is success.
func (is *Issuer) Revoke(ctx context.Context, ref rotator.CredentialRef) error {
	user, err := is.userFor(ref.Params)
	if err != nil {
		return err
	}
	what := fmt.Sprintf("awsiam: revoke %s (%s) of user %s", ref.ID, ref.Name, user)
	if ref.ID == "" {
		return rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("%s: no access key id recorded", what))
	}
	_, err = is.api.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{
		UserName: aws.String(user), AccessKeyId: aws.String(ref.ID), Status: types.StatusTypeInactive,
	})
	switch {
	case errorCode(err) == "NoSuchEntity":
		is.log.InfoContext(ctx, "access key already gone", "user", user, "id", ref.ID, "name", ref.Name)
		is.untag(ctx, user, ref.ID)
		return nil
	case err != nil:
		return classify(what+": deactivate", err)
	}
	if !is.delete {
		is.log.InfoContext(ctx, "deactivated access key (delete_on_revoke is false)", "user", user, "id", ref.ID, "name", ref.Name)
		return nil
	}
	_, err = is.api.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(user), AccessKeyId: aws.String(ref.ID)})
	if err != nil && errorCode(err) != "NoSuchEntity" {
		return classify(what+": delete", err)
	}
	is.untag(ctx, user, ref.ID)
	is.log.InfoContext(ctx, "deleted access key", "user", user, "id", ref.ID, "name", ref.Name)
	return nil
}

// untag drops the description tag of a deleted key, best effort.
func (is *Issuer) untag(ctx context.Context, user, id string) {
	_, err := is.api.UntagUser(ctx, &iam.UntagUserInput{UserName: aws.String(user), TagKeys: []string{id}})
	if err != nil && errorCode(err) != "NoSuchEntity" {
		is.log.WarnContext(ctx, "could not remove the description tag of a deleted key", "user", user, "id", id, "err", classify("untag", err))
	}
}

// describeKeys lists keys for a message: "AKIA… [rekey:ci-v2, Active], …".
func (is *Issuer) describeKeys(ctx context.Context, user string, keys []types.AccessKeyMetadata) string {
	tags, _ := is.userTags(ctx, user) // best effort: the message is still useful without
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		id := aws.ToString(k.AccessKeyId)
		desc := tags[id]
		if desc == "" {
			desc = "no description"
		}
		parts = append(parts, fmt.Sprintf("%s [%s, %s]", id, desc, k.Status))
	}
	return strings.Join(parts, ", ")
}

// listKeys returns every access key of user.
func (is *Issuer) listKeys(ctx context.Context, user string) ([]types.AccessKeyMetadata, error) {
	var keys []types.AccessKeyMetadata
	p := iam.NewListAccessKeysPaginator(is.api, &iam.ListAccessKeysInput{UserName: aws.String(user)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		keys = append(keys, page.AccessKeyMetadata...)
	}
	return keys, nil
}

// userTags returns the tags of user as a map.
func (is *Issuer) userTags(ctx context.Context, user string) (map[string]string, error) {
	tags := map[string]string{}
	p := iam.NewListUserTagsPaginator(is.api, &iam.ListUserTagsInput{UserName: aws.String(user)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, t := range page.Tags {
			tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
	}
	return tags, nil
}

// checkTagText checks that name can go in the intent tag's key (at most 128
// characters with the prefix) and the description tag's value, whose
// alphabet is letters, digits, white space and _.:/=+-@.
func checkTagText(name string) error {
	if name == "" {
		return fmt.Errorf("is empty")
	}
	if n := len([]rune(IntentPrefix + name)); n > 128 {
		return fmt.Errorf("is longer than %d characters", 128-len(IntentPrefix))
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(" _.:/=+-@", r)) {
			return fmt.Errorf("has a character IAM tags do not allow (%q)", r)
		}
	}
	return nil
}

var (
	_ rotator.Issuer = (*Issuer)(nil)
	_ rotator.Finder = (*Issuer)(nil)
)
