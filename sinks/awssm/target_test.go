package awssm

import (
	"strings"
	"testing"
)

// TestValidateTarget: `rekey validate` refuses a binding Secrets Manager
// would not take, or one with '..', '.' or empty segments, naming the field.
func TestValidateTarget(t *testing.T) {
	c := DefaultConfig()
	for name, tc := range map[string]struct {
		path   string
		params map[string]string
		want   string // prefix of the error; "" = valid
	}{
		"default":        {},
		"name":           {path: "prod/billing/api"},
		"leading slash":  {path: "/prod/billing/api"},
		"arn":            {path: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/api-AbCdEf"},
		"parent segment": {path: "prod/../admin", want: "path: "},
		"empty segment":  {path: "prod//api", want: "path: "},
		"space":          {path: "prod api", want: "path: "},
		"unknown format": {path: "x", params: map[string]string{"format": "yaml"}, want: "params.format: "},
	} {
		t.Run(name, func(t *testing.T) {
			err := c.ValidateTarget(tc.path, tc.params)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("ValidateTarget = %v", err)
			case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
				t.Fatalf("ValidateTarget = %v, want %q…", err, tc.want)
			}
		})
	}
}
