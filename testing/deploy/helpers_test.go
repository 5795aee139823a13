package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// root is the repository root, two levels above this package.
func root(t *testing.T) string {
	t.Helper()
	r, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(r, "go.mod")); err != nil {
		t.Fatalf("repository root not found at %s: %v", r, err)
	}
	return r
}

func read(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// documentedMetrics returns the metric names of docs/METRICS.md's tables,
// split into its "Exported" and "Proposed" sections.
func documentedMetrics(t *testing.T) (exported, proposed map[string]bool) {
	t.Helper()
	exported, proposed = map[string]bool{}, map[string]bool{}
	row := regexp.MustCompile("^\\| `([a-z_:][a-z0-9_:]*)` \\|")
	into := map[string]bool(nil)
	for line := range strings.SplitSeq(read(t, "docs/METRICS.md"), "\n") {
		switch {
		case strings.HasPrefix(line, "## Exported"):
			into = exported
		case strings.HasPrefix(line, "## Proposed"):
			into = proposed
		case strings.HasPrefix(line, "## "):
			into = nil
		}
		if m := row.FindStringSubmatch(line); m != nil && into != nil {
			into[m[1]] = true
		}
	}
	if len(exported) == 0 {
		t.Fatal("docs/METRICS.md: no metric rows under \"## Exported\"")
	}
	return exported, proposed
}
