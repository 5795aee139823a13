// Package secretref resolves secrets that configuration names by reference —
// an environment variable (`*_env`) or a file (`*_file`) — never inline. The
// value comes back as a rotator.Secret so it cannot be logged by accident.
package secretref

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/rekeyhq/rekey/rotator"
)

// Ref names where a secret is read from. At most one field is set.
type Ref struct {
	Env  string
	File string
}

// IsZero reports whether neither source is set.
func (r Ref) IsZero() bool { return r.Env == "" && r.File == "" }

// Validate checks the reference; field is the config field's base name
// (e.g. "token"), used in messages like "token_env: ...".
func (r Ref) Validate(field string, required bool) error {
	switch {
	case r.Env != "" && r.File != "":
		return fmt.Errorf("%s_env: set only one of %s_env and %s_file", field, field, field)
	case required && r.IsZero():
		return fmt.Errorf("%s_env: required (or %s_file)", field, field)
	case r.Env != "" && !ValidEnvName(r.Env):
		return fmt.Errorf("%s_env: %s", field, errNotAName)
	}
	return nil
}

// errNotAName never quotes the value: what is there may be a pasted secret.
var errNotAName = errors.New("not an environment variable name (letters, digits, _; not starting with a digit) — if a secret was pasted here it is not shown: put it in the environment and name its variable")

// ValidEnvName reports whether s can name an environment variable
// ([A-Za-z_][A-Za-z0-9_]*): anything else in a *_env field may be the
// secret itself, and must never be echoed.
func ValidEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// Resolve reads the secret. A file's trailing newline is dropped. The error
// names the variable or file, never the value.
func (r Ref) Resolve() (rotator.Secret, error) {
	switch {
	case r.Env != "" && !ValidEnvName(r.Env):
		return rotator.Secret{}, errNotAName
	case r.Env != "":
		v, ok := os.LookupEnv(r.Env)
		if !ok || v == "" {
			return rotator.Secret{}, fmt.Errorf("environment variable %s is not set", r.Env)
		}
		return rotator.NewSecret(v), nil
	case r.File != "":
		b, err := os.ReadFile(r.File)
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				return rotator.Secret{}, fmt.Errorf("read secret file %s: %v", r.File, pe.Err)
			}
			return rotator.Secret{}, fmt.Errorf("read secret file %s: %v", r.File, err)
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return rotator.Secret{}, fmt.Errorf("secret file %s is empty", r.File)
		}
		return rotator.NewSecret(v), nil
	}
	return rotator.Secret{}, nil
}
