package deploy

import (
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rekeyhq/rekey/app"
	"github.com/rekeyhq/rekey/config"
)

// TestMetricsDocListsRegistry builds the real daemon from
// config.example.yaml and checks that every metric family its registry
// gathers is documented (the Go and process collectors as go_*/process_*).
// A vector with no series yet is not gathered: TestMetricsDocListsSource
// covers those.
func TestMetricsDocListsRegistry(t *testing.T) {
	exported, _ := documentedMetrics(t)
	doc := read(t, "docs/METRICS.md")
	cfg, err := config.Load(filepath.Join(root(t), "config.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg.Store.Path = filepath.Join(dir, "rekey.db")
	for i := range cfg.Sinks {
		if cfg.Sinks[i].Type == "file" {
			cfg.Sinks[i].Settings["dir"] = filepath.Join(dir, "keys")
		}
	}
	d, err := app.Build(context.Background(), cfg, app.NewLogger(io.Discard, "error"), app.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	mfs, err := d.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var rekey int
	for _, mf := range mfs {
		name := mf.GetName()
		switch {
		case strings.HasPrefix(name, "rekey_"):
			rekey++
			if !exported[name] {
				t.Errorf("the daemon registers %s (%s), which docs/METRICS.md does not list under Exported", name, mf.GetType())
			}
		case strings.HasPrefix(name, "go_"), strings.HasPrefix(name, "process_"):
			prefix := name[:strings.Index(name, "_")+1] + "*"
			if !strings.Contains(doc, "`"+prefix+"`") {
				t.Errorf("the daemon registers %s; docs/METRICS.md does not mention `%s`", name, prefix)
			}
		default:
			t.Errorf("the daemon registers %s, which docs/METRICS.md does not list", name)
		}
	}
	if rekey == 0 {
		t.Fatal("the registry gathered no rekey_ metric: the daemon was not built as expected")
	}
}

// metricOpts matches a metric defined with a literal name.
var (
	metricNew  = regexp.MustCompile(`prometheus\.New(Counter|Gauge|Histogram|Summary)(Vec|Func)?\(`)
	metricName = regexp.MustCompile(`prometheus\.New(?:Counter|Gauge|Histogram|Summary)(?:Vec|Func)?\(prometheus\.\w+Opts\{\s*Name:\s*"([a-z_:][a-z0-9_:]*)"`)
	// A collector's metrics (counters read from the store) are described
	// by a Desc.
	descNew  = regexp.MustCompile(`prometheus\.NewDesc\(`)
	descName = regexp.MustCompile(`prometheus\.NewDesc\(\s*"([a-z_:][a-z0-9_:]*)"`)
)

// TestMetricsDocListsSource scans the product's sources (not tests, test
// servers or tools) for metric definitions and checks both ways: every
// rekey_ metric defined is documented as exported, and every metric
// documented as exported is defined.
func TestMetricsDocListsSource(t *testing.T) {
	exported, proposed := documentedMetrics(t)
	r := root(t)
	defined := map[string]string{}
	err := filepath.WalkDir(r, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(r, path)
		if e.IsDir() {
			switch rel {
			case "testing", "tools", "bench", "e2e", ".git", "data":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		src := string(b)
		news := len(metricNew.FindAllString(src, -1))
		names := metricName.FindAllStringSubmatch(src, -1)
		if news != len(names) {
			t.Errorf("%s: %d metric constructors but %d literal names (Name: \"...\" first in the Opts): this test cannot read them; keep Name literal and first", rel, news, len(names))
		}
		descs := descName.FindAllStringSubmatch(src, -1)
		if n := len(descNew.FindAllString(src, -1)); n != len(descs) {
			t.Errorf("%s: %d prometheus.NewDesc calls but %d literal names: this test cannot read them; keep the name a literal, first", rel, n, len(descs))
		}
		names = append(names, descs...)
		for _, m := range names {
			defined[m[1]] = rel
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(defined) == 0 {
		t.Fatal("no metric definitions found: the scan is broken")
	}
	for name, file := range defined {
		if !exported[name] {
			t.Errorf("%s defines %s; list it in docs/METRICS.md under Exported (name, type, labels, meaning)", file, name)
		}
		if proposed[name] {
			t.Errorf("%s is defined (%s) but still listed under Proposed in docs/METRICS.md", name, file)
		}
	}
	for name := range exported {
		if _, ok := defined[name]; !ok {
			t.Errorf("docs/METRICS.md lists %s as exported, but no product source defines it", name)
		}
	}
	if t.Failed() {
		names := slices.Sorted(func(yield func(string) bool) {
			for n := range defined {
				if !yield(n) {
					return
				}
			}
		})
		t.Logf("defined: %s", strings.Join(names, ", "))
	}
}
