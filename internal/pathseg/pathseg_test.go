package pathseg

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for name, tc := range map[string]struct {
		path string
		want string // a fragment of the error, "" for none
	}{
		"plain":             {"team/api", ""},
		"dots inside names": {"a..b/c.json", ""},
		"parent":            {"../../etc/x", "'..' segment"},
		"parent inside":     {"secret/../sys", "'..' segment"},
		"dot":               {"a/./b", "'.' segment"},
		"absolute":          {"/etc/x", "absolute"},
		"empty segment":     {"a//b", "empty segment"},
		"trailing slash":    {"a/", "empty segment"},
		"empty":             {"", "empty path"},
		"query":             {"a?b=1", "'?'"},
		"fragment":          {"a#b", "'?' or '#'"},
		"nul":               {"a\x00b", "control character"},
		"backslash":         {`..\x`, `'\'`},
	} {
		t.Run(name, func(t *testing.T) {
			err := Check(tc.path)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Check(%q) = %v, want nil", tc.path, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Check(%q) = %v, want an error with %q", tc.path, err, tc.want)
			}
		})
	}
}

func TestCheckListsEveryProblem(t *testing.T) {
	err := Check("/a//../b?")
	for _, want := range []string{"absolute", "empty segment", "'..'", "'?'"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check = %v, want %q in it", err, want)
		}
	}
}
