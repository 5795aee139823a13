package awsiam

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Config of an IAM access key issuer. Credentials come from the default
// chain (environment, shared config, web identity, instance role), optionally
// exchanged for a role with AssumeRoleARN.
type Config struct {
	// UserName is the IAM user whose access keys rekey rotates; a key's
	// params may override it with user_name (then FindByName, which sees no
	// params, cannot work for that key).
	UserName string `koanf:"user_name"`
	// Region of the SDK clients; IAM is global. Default us-east-1.
	Region string `koanf:"region"`
	// Endpoint overrides the IAM and STS endpoint (tests, moto, VPC
	// endpoints).
	Endpoint string `koanf:"endpoint"`
	// AssumeRoleARN, when set, is assumed with the default chain's
	// credentials (session name "rekey").
	AssumeRoleARN string `koanf:"assume_role_arn"`
	// DeleteOnRevoke deletes a key after deactivating it (default true);
	// false only deactivates it, leaving the deletion to a person.
	DeleteOnRevoke bool `koanf:"delete_on_revoke"`
	// Format of the secret delivered to sinks: "json" (default,
	// {"AccessKeyId": …, "SecretAccessKey": …}) or "secret" (the secret
	// access key alone; the consumer must learn the id elsewhere).
	Format string `koanf:"format"`
}

// Formats of the delivered secret.
const (
	FormatJSON   = "json"
	FormatSecret = "secret"
)

// DefaultRegion is the region unless configured.
const DefaultRegion = "us-east-1"

// DefaultConfig returns the defaults applied before the YAML is decoded.
func DefaultConfig() Config {
	return Config{Region: DefaultRegion, DeleteOnRevoke: true, Format: FormatJSON}
}

// Validate reports every configuration error, each starting with its field.
func (c Config) Validate() error {
	var errs []error
	if c.UserName != "" && !validUserName(c.UserName) {
		errs = append(errs, errors.New("user_name: must be 1-64 characters of letters, digits and +=,.@_-"))
	}
	if c.Endpoint != "" {
		if u, err := url.Parse(c.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, errors.New("endpoint: must be an http(s) URL"))
		}
	}
	if c.AssumeRoleARN != "" && !strings.HasPrefix(c.AssumeRoleARN, "arn:") {
		errs = append(errs, errors.New("assume_role_arn: must be a role ARN (arn:aws:iam::<account>:role/<name>)"))
	}
	switch c.Format {
	case "", FormatJSON, FormatSecret:
	default:
		errs = append(errs, fmt.Errorf("format: must be %q or %q", FormatJSON, FormatSecret))
	}
	return errors.Join(errs...)
}

// validUserName follows IAM's rule for user names: [\w+=,.@-]{1,64}.
func validUserName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_+=,.@-", r)) {
			return false
		}
	}
	return true
}
