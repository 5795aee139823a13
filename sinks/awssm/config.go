package awssm

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Value formats.
const (
	// FormatString stores the key as the whole SecretString.
	FormatString = "string"
	// FormatJSON stores the key in one field of a JSON object; the other
	// fields are kept as they are.
	FormatJSON = "json"
)

// Config configures the AWS Secrets Manager sink.
//
//	sinks:
//	  - name: aws-prod
//	    type: awssm
//	    region: eu-west-1
//	    assume_role_arn: arn:aws:iam::123456789012:role/rekey
//	    format: json               # string | json
//	    json_field: api_key
//	    create_if_missing: true
//	    kms_key_id: alias/rekey
//	    tags: {team: payments}
//	    adopt: false
//	    managed_tag_key: managed-by
//	    managed_tag_value: rekey
//	    recovery_window_days: 30   # Remove; 0 deletes without recovery
//	    timeout: 30s
//
// Credentials come from the SDK's default chain (environment, shared
// files, instance or pod identity), optionally exchanged for a role with
// sts:AssumeRole. A key's binding may override the format and the JSON
// field per target with params: format, json_field (or field).
type Config struct {
	Region        string `koanf:"region"`
	Endpoint      string `koanf:"endpoint"`
	AssumeRoleARN string `koanf:"assume_role_arn"`

	Format    string `koanf:"format"`
	JSONField string `koanf:"json_field"`

	CreateIfMissing bool              `koanf:"create_if_missing"`
	KMSKeyID        string            `koanf:"kms_key_id"`
	Tags            map[string]string `koanf:"tags"`

	Adopt           bool   `koanf:"adopt"`
	ManagedTagKey   string `koanf:"managed_tag_key"`
	ManagedTagValue string `koanf:"managed_tag_value"`

	// RecoveryWindowDays is how long a secret deleted by Remove can be
	// restored (7–30); 0 deletes it at once.
	RecoveryWindowDays int `koanf:"recovery_window_days"`
	// Timeout bounds each sink call (all its requests together).
	Timeout time.Duration `koanf:"timeout"`
}

// DefaultConfig returns the defaults, applied before the user's YAML.
func DefaultConfig() Config {
	return Config{
		Format:             FormatString,
		JSONField:          "api_key",
		CreateIfMissing:    true,
		ManagedTagKey:      "managed-by",
		ManagedTagValue:    "rekey",
		RecoveryWindowDays: 30,
		Timeout:            30 * time.Second,
	}
}

// Validate checks the configuration; every error starts with its field name.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Endpoint != "" {
		if u, err := url.Parse(c.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("endpoint: must be an http(s) URL")
		}
	}
	if c.AssumeRoleARN != "" && !strings.HasPrefix(c.AssumeRoleARN, "arn:") {
		add("assume_role_arn: must be an ARN (arn:aws:iam::<account>:role/<name>)")
	}
	switch c.Format {
	case FormatString:
	case FormatJSON:
		if c.JSONField == "" {
			add("json_field: required when format is json")
		}
	default:
		add("format: must be string or json")
	}
	if c.KMSKeyID != "" && !c.CreateIfMissing {
		add("kms_key_id: only used with create_if_missing")
	}
	if c.ManagedTagKey == "" || c.ManagedTagValue == "" {
		add("managed_tag_key: the managed tag needs a key and a value")
	}
	if _, clash := c.Tags[c.ManagedTagKey]; clash {
		add("tags: must not set the managed tag %q", c.ManagedTagKey)
	}
	if d := c.RecoveryWindowDays; d != 0 && (d < 7 || d > 30) {
		add("recovery_window_days: must be 0 or between 7 and 30")
	}
	if c.Timeout <= 0 {
		add("timeout: must be positive")
	}
	return errors.Join(errs...)
}

// secretNameRE is what Secrets Manager accepts in a secret's name.
var secretNameRE = regexp.MustCompile(`^[A-Za-z0-9/_+=.@-]{1,512}$`)

// ValidateTarget checks a key's binding: its path (default the key's name)
// is a secret ARN or a name Secrets Manager accepts, with no "..", "." or
// empty segment between its '/'s (a leading '/' is allowed, as AWS does).
func (c Config) ValidateTarget(path string, params map[string]string) error {
	var errs []error
	if path != "" && !strings.HasPrefix(path, "arn:") {
		switch {
		case !secretNameRE.MatchString(path):
			errs = append(errs, fmt.Errorf("path: %q is not a Secrets Manager name (1 to 512 of A-Z a-z 0-9 / _ + = . @ -)", path))
		default:
			for _, seg := range strings.Split(strings.TrimPrefix(path, "/"), "/") {
				if seg == "" || seg == "." || seg == ".." {
					errs = append(errs, fmt.Errorf("path: %q has an empty, '.' or '..' segment", path))
					break
				}
			}
		}
	}
	if f, ok := params["format"]; ok && f != FormatString && f != FormatJSON {
		errs = append(errs, fmt.Errorf("params.format: must be %s or %s", FormatString, FormatJSON))
	}
	return errors.Join(errs...)
}
