package vault

import (
	"strings"
	"testing"

	"github.com/rekeyhq/rekey/rotator"
)

// TestValidateTargetRefusesTraversal: `rekey validate` refuses a binding
// whose path or params.mount would leave the mount, naming the field.
func TestValidateTargetRefusesTraversal(t *testing.T) {
	c := DefaultConfig()
	for name, tc := range map[string]struct {
		path   string
		params map[string]string
		want   string // prefix of the error; "" = valid
	}{
		"relative path":          {path: "team/api"},
		"API path":               {path: "secret/data/team/api"},
		"slashes at the ends":    {path: "/team/api/"},
		"default path":           {},
		"parent segments":        {path: "../../sys/policy/root", want: "path: "},
		"parent inside":          {path: "team/../../sys/x", want: "path: "},
		"empty segment":          {path: "team//api", want: "path: "},
		"query":                  {path: "team/api?version=1", want: "path: "},
		"mount leaving its root": {path: "x", params: map[string]string{"mount": "secret/../sys"}, want: "params.mount: "},
		"mount ok":               {path: "x", params: map[string]string{"mount": "kv/team"}},
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

// TestResolveRefusesTraversal: a target that bypassed validation never
// becomes a request path; the Vault client would resolve ".." and write
// to /v1/sys/… instead.
func TestResolveRefusesTraversal(t *testing.T) {
	s := &Sink{cfg: DefaultConfig()}
	for _, tgt := range []rotator.Target{
		{Key: "k", Path: "../../sys/policy/root"},
		{Key: "k", Path: "x", Params: map[string]string{"mount": "secret/../sys"}},
		{Key: "k", Path: "team//api"},
	} {
		r, err := s.resolve(tgt)
		if err == nil || !rotator.IsPermanent(err) {
			t.Errorf("resolve(%+v) = %s, %v; want a permanent error", tgt, r, err)
		}
	}
	if r, err := s.resolve(rotator.Target{Key: "k", Path: "secret/data/team/api"}); err != nil || r.String() != "secret/data/team/api" {
		t.Errorf("resolve(API path) = %s, %v", r, err)
	}
}
