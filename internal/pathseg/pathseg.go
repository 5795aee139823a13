// Package pathseg checks the '/'-separated names that adapters turn into
// file paths and request paths (a file sink's target, a Vault mount or
// secret path) so that a name from the configuration can never leave the
// root it is meant for: no ".." or "." segment, no empty segment, no control
// character, and nothing a URL would read as a query or fragment. The same
// check runs in `rekey validate` (with the YAML path) and again where the
// path is built.
package pathseg

import (
	"errors"
	"fmt"
	"strings"
)

// Check reports every problem of p, a relative '/'-separated path, in one
// error ("%q: …; …"), or nil. An empty p is a problem: callers that allow
// a default check the default.
func Check(p string) error {
	if p == "" {
		return errors.New("empty path")
	}
	var why []string
	add := func(s string) {
		for _, w := range why {
			if w == s {
				return
			}
		}
		why = append(why, s)
	}
	if strings.HasPrefix(p, "/") {
		add("it is absolute (starts with '/')")
	}
	for _, seg := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		switch seg {
		case "":
			add("it has an empty segment ('//' or a trailing '/')")
		case ".":
			add("it has a '.' segment")
		case "..":
			add("it has a '..' segment (it would leave its root)")
		}
	}
	for _, r := range p {
		switch {
		case r < 0x20 || r == 0x7f:
			add("it has a control character")
		case r == '\\':
			add(`it has a '\'`)
		case r == '?' || r == '#':
			add("it has a '?' or '#' (a URL would cut the path there)")
		}
	}
	if len(why) == 0 {
		return nil
	}
	return fmt.Errorf("%q: %s", p, strings.Join(why, "; "))
}
