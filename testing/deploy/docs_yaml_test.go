package deploy

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/rekeyhq/rekey/app"
	"github.com/rekeyhq/rekey/config"
)

// A YAML snippet in the docs that is not rekey configuration (a schema
// outline, a Slack manifest…) says so on the line before its fence:
//
//	<!-- not-config: why -->
//	```yaml
var notConfig = regexp.MustCompile(`^<!-- not-config: \S.* -->$`)

type snippet struct {
	file string
	line int // of the opening fence
	body string
	skip string // the not-config reason, if any
}

// yamlSnippets returns the ```yaml blocks of every Markdown file in docs/.
func yamlSnippets(t *testing.T) []snippet {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root(t), "docs", "*.md"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no docs/*.md found (%v)", err)
	}
	var out []snippet
	for _, f := range files {
		rel, _ := filepath.Rel(root(t), f)
		lines := strings.Split(read(t, rel), "\n")
		for i := 0; i < len(lines); i++ {
			fence := strings.TrimSpace(lines[i])
			if fence != "```yaml" && fence != "```yml" {
				continue
			}
			s := snippet{file: rel, line: i + 1}
			if i > 0 && notConfig.MatchString(strings.TrimSpace(lines[i-1])) {
				s.skip = strings.TrimSpace(lines[i-1])
			}
			var body []string
			for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
				body = append(body, lines[i])
			}
			s.body = strings.Join(body, "\n") + "\n"
			out = append(out, s)
		}
	}
	return out
}

// lists are the configuration's sections that are lists of named entries.
var lists = map[string]bool{"issuers": true, "sinks": true, "notifiers": true, "traffic": true, "webhooks": true, "keys": true}

// TestDocsYAMLValidates checks every ```yaml snippet in docs/ the way
// `rekey validate` would. A snippet that holds issuers and keys is a whole
// configuration and is validated alone. Any other is a fragment: it is
// merged into config.example.yaml (entries of the list sections replace the
// entry of the same name or are added; mappings are merged) and the result
// is validated; only references to adapters the fragment does not show
// ("unknown sink …") are forgiven, since the fragment's context defines
// them. Snippets that are not configuration are marked not-config.
func TestDocsYAMLValidates(t *testing.T) {
	var base map[string]any
	if err := yaml.Unmarshal([]byte(read(t, "config.example.yaml")), &base); err != nil {
		t.Fatal(err)
	}
	// REKEY_* overrides in the test's environment would leak into every check.
	for _, e := range os.Environ() {
		if name, _, _ := strings.Cut(e, "="); strings.HasPrefix(name, config.EnvPrefix) {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
	checked := 0
	for _, s := range yamlSnippets(t) {
		name := fmt.Sprintf("%s:%d", s.file, s.line)
		t.Run(name, func(t *testing.T) {
			if s.skip != "" {
				t.Skip(s.skip)
			}
			checked++
			var frag map[string]any
			if err := yaml.Unmarshal([]byte(s.body), &frag); err != nil {
				t.Fatalf("%s: not YAML (mark it <!-- not-config: why --> if it is not meant to be): %v", name, err)
			}
			whole := frag["issuers"] != nil && frag["keys"] != nil
			doc := frag
			if !whole {
				doc = merge(deepCopy(base), frag)
			}
			b, err := yaml.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			var problems config.Errors
			cfg, err := config.Parse(b)
			if err != nil {
				ce, ok := err.(config.Errors)
				if !ok {
					t.Fatalf("%s: %v", name, err)
				}
				problems = append(problems, ce...)
			}
			if cfg != nil {
				problems = append(problems, app.Validate(cfg)...)
			}
			unknownRef := regexp.MustCompile(`^unknown [a-z ]+ "[^"]*" \(known: `)
			for _, p := range problems {
				if !whole && unknownRef.MatchString(p.Msg) {
					t.Logf("forgiven (defined outside this fragment): %s: %s", p.Path, p.Msg)
					continue
				}
				t.Errorf("%s: %s: %s", name, p.Path, p.Msg)
			}
		})
	}
	if checked == 0 {
		t.Fatal("no YAML snippet was checked")
	}
}

// merge merges frag into base: list sections by entry name, mappings
// recursively, anything else replaced.
func merge(base, frag map[string]any) map[string]any {
	for k, v := range frag {
		switch fv := v.(type) {
		case map[string]any:
			if bv, ok := base[k].(map[string]any); ok {
				base[k] = merge(bv, fv)
				continue
			}
		case []any:
			if bv, ok := base[k].([]any); ok && lists[k] {
				base[k] = mergeNamed(bv, fv)
				continue
			}
		}
		base[k] = v
	}
	return base
}

func mergeNamed(base, frag []any) []any {
	for _, e := range frag {
		name := entryName(e)
		replaced := false
		for i, b := range base {
			if name != "" && entryName(b) == name {
				base[i], replaced = e, true
			}
		}
		if !replaced {
			base = append(base, e)
		}
	}
	return base
}

func entryName(e any) string {
	if m, ok := e.(map[string]any); ok {
		if n, ok := m["name"].(string); ok {
			return n
		}
	}
	return ""
}

func deepCopy(m map[string]any) map[string]any {
	b, err := yaml.Marshal(m)
	if err != nil {
		panic(err)
	}
	var out map[string]any
	if err := yaml.NewDecoder(bytes.NewReader(b)).Decode(&out); err != nil {
		panic(err)
	}
	return out
}
