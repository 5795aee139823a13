package awsiam

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/rekeyhq/rekey/rotator"
)

// fakeIAM answers GetAccessKeyLastUsed from a table (the IAM record itself
// is what the source interprets; the client call is exercised against moto
// by issuers/awsiam's tests, which share the SDK).
type fakeIAM struct {
	last map[string]*time.Time
	err  error
}

func (f fakeIAM) GetAccessKeyLastUsed(_ context.Context, in *iam.GetAccessKeyLastUsedInput, _ ...func(*iam.Options)) (*iam.GetAccessKeyLastUsedOutput, error) {
	if f.err != nil {
		return nil, f.err
	}
	t, ok := f.last[aws.ToString(in.AccessKeyId)]
	if !ok {
		return nil, &types.NoSuchEntityException{Message: aws.String("not found")}
	}
	return &iam.GetAccessKeyLastUsedOutput{AccessKeyLastUsed: &types.AccessKeyLastUsed{LastUsedDate: t}}, nil
}

func TestUnauthorized(t *testing.T) {
	cut := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	before, after := cut.Add(-time.Hour), cut.Add(time.Minute)
	api := fakeIAM{last: map[string]*time.Time{"AKIAOLDUSED": &after, "AKIAOLDQUIET": &before, "AKIANEVER": nil}}
	tests := map[string]struct {
		id        string
		want      float64
		wantErr   string
		permanent bool
	}{
		"used after cut-over":  {id: "AKIAOLDUSED", want: 1},
		"last use before":      {id: "AKIAOLDQUIET", want: 0},
		"never used":           {id: "AKIANEVER", want: 0},
		"unknown key is error": {id: "AKIAGONE", wantErr: "unknown to IAM", permanent: true},
		"no old id is error":   {id: "", wantErr: "no old access key", permanent: true},
	}
	s := NewWithAPI(api, slog.New(slog.DiscardHandler))
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r, err := s.Unauthorized(context.Background(), rotator.TrafficQuery{Key: "k", OldID: tc.id, Since: cut})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || rotator.IsPermanent(err) != tc.permanent {
					t.Fatalf("err = %v, want %q (permanent %v)", err, tc.wantErr, tc.permanent)
				}
				return
			}
			if err != nil || r.Value != tc.want || r.Detail == "" {
				t.Fatalf("reading %+v err %v, want %v", r, err, tc.want)
			}
		})
	}
	_, err := NewWithAPI(fakeIAM{err: context.DeadlineExceeded}, slog.New(slog.DiscardHandler)).Unauthorized(context.Background(), rotator.TrafficQuery{OldID: "AKIAX", Since: cut})
	if err == nil || rotator.IsPermanent(err) {
		t.Fatalf("an outage must be retryable: %v", err)
	}
}

func TestValidate(t *testing.T) {
	if err := (Config{}).Validate(); err == nil || !strings.HasPrefix(err.Error(), "region:") {
		t.Fatalf("missing region: %v", err)
	}
	if err := (Config{Region: "us-east-1", Endpoint: "not a url"}).Validate(); err == nil || !strings.Contains(err.Error(), "endpoint:") {
		t.Fatalf("bad endpoint: %v", err)
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}
