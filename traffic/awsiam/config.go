package awsiam

import (
	"errors"
	"net/url"
	"strings"

	"github.com/rekeyhq/rekey/rotator"
)

// Config of the IAM last-used source.
//
//	traffic:
//	  - name: iam-usage
//	    type: awsiam
//	    region: us-east-1
//	    # endpoint: http://127.0.0.1:5000   # tests (moto)
//	    # assume_role_arn: arn:aws:iam::123456789012:role/rekey-reader
type Config struct {
	Region        string `koanf:"region"`
	Endpoint      string `koanf:"endpoint"`
	AssumeRoleARN string `koanf:"assume_role_arn"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config { return Config{Region: "us-east-1"} }

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Region == "" {
		errs = append(errs, errors.New("region: required"))
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			errs = append(errs, errors.New("endpoint: must be an http(s) URL"))
		}
	}
	if c.AssumeRoleARN != "" && !strings.HasPrefix(c.AssumeRoleARN, "arn:") {
		errs = append(errs, errors.New("assume_role_arn: must be an ARN"))
	}
	return errors.Join(errs...)
}

// Answers: IAM's last-used record tells whether the old access key is
// still used; it knows nothing of failed requests.
func (Config) Answers(map[rotator.Question]string) []rotator.Question {
	return []rotator.Question{rotator.OldKeyUse}
}
