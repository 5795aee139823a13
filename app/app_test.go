package app

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestEveryAdapterIsWired fails when an adapter package exists without its
// line in the family's factory map (the type name is the package's folder).
func TestEveryAdapterIsWired(t *testing.T) {
	known := KnownTypes()
	for family, dir := range map[string]string{"issuers": "../issuers", "sinks": "../sinks", "notifiers": "../notifiers", "traffic": "../traffic", "webhooks": "../webhooks"} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if !e.IsDir() || e.Name() == "internal" || e.Name() == "sinktest" {
				continue
			}
			if m, _ := filepath.Glob(filepath.Join(dir, e.Name(), "config.go")); len(m) == 0 {
				continue // not an adapter package
			}
			if !slices.Contains(known[family], e.Name()) {
				t.Errorf("%s/%s is an adapter package but not in app's %s factory map", family, e.Name(), family)
			}
		}
	}
}

// The example configuration must stay valid and buildable.
func TestExampleConfigIsValid(t *testing.T) {
	cfg := loadExample(t)
	if errs := Validate(cfg); len(errs) > 0 {
		t.Fatalf("config.example.yaml: %v", errs)
	}
}
