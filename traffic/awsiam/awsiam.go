// Package awsiam is a traffic source for IAM access keys: it reports
// whether the OLD access key was used since the rotation's cut-over, from
// IAM's GetAccessKeyLastUsed. Zero means no use recorded since then.
//
// IAM records last use approximately (AWS documents a delay of up to about
// four hours), so use a quiet_period that covers it, or combine it with a
// source that sees requests directly. An access key IAM does not know, or a
// query without the old key's id, is an error — never zero.
package awsiam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/rekeyhq/rekey/rotator"
)

// API is the part of the IAM client the source uses.
type API interface {
	GetAccessKeyLastUsed(ctx context.Context, in *iam.GetAccessKeyLastUsedInput, opts ...func(*iam.Options)) (*iam.GetAccessKeyLastUsedOutput, error)
}

// Source reads IAM's last-used record of the old access key.
type Source struct {
	api API
	log *slog.Logger
}

// New builds the source with credentials from the default AWS chain.
func New(cfg Config, logger *slog.Logger) (*Source, error) {
	awsCfg, err := awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithRegion(cfg.Region))
	if err != nil {
		return nil, fmt.Errorf("awsiam traffic: load AWS configuration: %w", err)
	}
	if cfg.AssumeRoleARN != "" {
		stsClient := sts.NewFromConfig(awsCfg, func(o *sts.Options) {
			if cfg.Endpoint != "" {
				o.BaseEndpoint = aws.String(cfg.Endpoint)
			}
		})
		awsCfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsClient, cfg.AssumeRoleARN,
			func(o *stscreds.AssumeRoleOptions) { o.RoleSessionName = "rekey-traffic" }))
	}
	client := iam.NewFromConfig(awsCfg, func(o *iam.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	return NewWithAPI(client, logger), nil
}

// NewWithAPI builds the source over a given IAM client.
func NewWithAPI(api API, logger *slog.Logger) *Source { return &Source{api: api, log: logger} }

// Unauthorized reports 1 when the old access key was used after q.Since
// (the cut-over), else 0. The name is the TrafficSource contract: here the
// signal is "the old key is still in use".
func (s *Source) Unauthorized(ctx context.Context, q rotator.TrafficQuery) (rotator.Reading, error) {
	if q.OldID == "" {
		return rotator.Reading{}, rotator.Permanent(errors.New("awsiam traffic: no old access key id to watch"))
	}
	out, err := s.api.GetAccessKeyLastUsed(ctx, &iam.GetAccessKeyLastUsedInput{AccessKeyId: aws.String(q.OldID)})
	if err != nil {
		var nse *types.NoSuchEntityException
		if errors.As(err, &nse) {
			return rotator.Reading{}, rotator.Permanent(fmt.Errorf("awsiam traffic: access key %s is unknown to IAM", q.OldID))
		}
		return rotator.Reading{}, rotator.WithReason(rotator.ReasonTransient, fmt.Errorf("awsiam traffic: last use of %s: %w", q.OldID, err))
	}
	now := time.Now()
	r := rotator.Reading{At: now}
	var last time.Time
	if out.AccessKeyLastUsed != nil && out.AccessKeyLastUsed.LastUsedDate != nil {
		last = *out.AccessKeyLastUsed.LastUsedDate
	}
	switch {
	case last.IsZero():
		r.Detail = fmt.Sprintf("access key %s: never used", q.OldID)
	case last.After(q.Since):
		r.Value = 1
		r.Detail = fmt.Sprintf("access key %s last used %s, after the cut-over at %s", q.OldID, last.UTC().Format(time.RFC3339), q.Since.UTC().Format(time.RFC3339))
	default:
		r.Detail = fmt.Sprintf("access key %s last used %s, before the cut-over", q.OldID, last.UTC().Format(time.RFC3339))
	}
	return r, nil
}

var _ rotator.TrafficSource = (*Source)(nil)
