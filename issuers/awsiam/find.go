package awsiam

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/rekeyhq/rekey/rotator"
)

// Suspect window: an access key without a description tag created within
// [intent − IntentSkew, intent + IntentWindow] of a mint intent may be that
// mint's orphan.
const (
	IntentSkew   = time.Minute
	IntentWindow = 15 * time.Minute
)

// FindByName returns the ids of the active access keys of the configured
// user whose description tag is "rekey:<name>". When a mint intent for
// name is still on the user and an undescribed key was created near it, it
// returns a retryable invariant error naming that key instead: it may be an
// orphan of an interrupted mint, or a key a person created; rekey revokes
// neither on a guess. FindByName needs the issuer's user_name (it sees no
// key params): with per-key users only, it logs a warning and finds
// nothing, and the two-key refusal of Mint is the remaining safeguard (an
// orphan takes the second slot, and the refusal names it with its
// description tag).
func (is *Issuer) FindByName(ctx context.Context, key, name string) ([]string, error) {
	if is.user == "" {
		is.log.WarnContext(ctx, "cannot look for orphans: the issuer has no user_name and FindByName sees no key params",
			"key", key, "name", name)
		return []string{}, nil
	}
	what := fmt.Sprintf("awsiam: find %s for user %s", name, is.user)
	tags, err := is.userTags(ctx, is.user)
	if err != nil {
		return nil, classify(what+": list user tags", err)
	}
	keys, err := is.listKeys(ctx, is.user)
	if err != nil {
		return nil, classify(what+": list access keys", err)
	}
	ids := []string{}
	for _, k := range keys {
		id := aws.ToString(k.AccessKeyId)
		if tags[id] == DescriptionPrefix+name && k.Status == types.StatusTypeActive {
			ids = append(ids, id)
		}
	}
	if raw, ok := tags[IntentPrefix+name]; ok {
		if suspects := suspects(raw, keys, tags); len(suspects) > 0 {
			return nil, rotator.WithReason(rotator.ReasonInvariant, fmt.Errorf(
				"%s: access key %s has no description and was created within %s of rekey's mint of %s (tag %s=%s): "+
					"it may be left by an interrupted mint, or a person's; rekey will not revoke it on a guess. "+
					"Delete it if it is the orphan, or give it a description, then remove the tag",
				what, strings.Join(suspects, ", "), IntentWindow, name, IntentPrefix+name, raw))
		}
	}
	return ids, nil
}

// suspects returns the keys without a description tag created near the
// intent time raw (RFC 3339). An unreadable time makes every undescribed
// key a suspect.
func suspects(raw string, keys []types.AccessKeyMetadata, tags map[string]string) []string {
	at, err := time.Parse(time.RFC3339, raw)
	var out []string
	for _, k := range keys {
		id := aws.ToString(k.AccessKeyId)
		if _, described := tags[id]; described {
			continue
		}
		created := aws.ToTime(k.CreateDate)
		if err != nil || (!created.Before(at.Add(-IntentSkew)) && !created.After(at.Add(IntentWindow))) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// LastUsed reports when the access key was last used (zero if never), a
// usage signal for a drain gate. A key that does not exist is a permanent
// error wrapping rotator.ErrNotFound.
func (is *Issuer) LastUsed(ctx context.Context, accessKeyID string) (time.Time, error) {
	what := "awsiam: last use of " + accessKeyID
	out, err := is.api.GetAccessKeyLastUsed(ctx, &iam.GetAccessKeyLastUsedInput{AccessKeyId: aws.String(accessKeyID)})
	if errorCode(err) == "NoSuchEntity" {
		return time.Time{}, rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("%s: %w", what, rotator.ErrNotFound))
	}
	if err != nil {
		return time.Time{}, classify(what, err)
	}
	if out.AccessKeyLastUsed == nil {
		return time.Time{}, nil
	}
	return aws.ToTime(out.AccessKeyLastUsed.LastUsedDate), nil
}
