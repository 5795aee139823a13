package file

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rekeyhq/rekey/rotator"
)

// TestSymlinkOutOfDirIsRefused: a symlink planted in the sink's directory
// does not let a write land outside it; every access goes through an
// os.Root on dir.
func TestSymlinkOutOfDirIsRefused(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "team")); err != nil {
		t.Skip("no symlinks here:", err)
	}
	s := newSink(t, Config{Dir: dir})
	err := s.Stage(context.Background(), rotator.Target{Key: "k", Path: "team/api"}, delivery(1, "ka_live_x", ""))
	if err == nil {
		t.Fatal("Stage through a symlink out of dir succeeded")
	}
	entries, _ := os.ReadDir(outside)
	if len(entries) != 0 {
		t.Fatalf("files written outside the sink's dir: %v", entries)
	}
}

// TestValidateTarget: `rekey validate` refuses binding paths that leave the
// sink's dir, naming the field.
func TestValidateTarget(t *testing.T) {
	c := DefaultConfig()
	for path, want := range map[string]string{
		"":            "",
		"api":         "",
		"team/api":    "",
		"../../etc/x": "'..' segment",
		"/etc/x":      "absolute",
		"team//api":   "empty segment",
		"team/./api":  "'.' segment",
		"team/api/":   "empty segment",
		"a/../../b":   "'..' segment",
		"x?y":         "'?'",
	} {
		err := c.ValidateTarget(path, nil)
		switch {
		case want == "" && err != nil:
			t.Errorf("ValidateTarget(%q) = %v", path, err)
		case want != "" && (err == nil || !strings.HasPrefix(err.Error(), "path: ") || !strings.Contains(err.Error(), want)):
			t.Errorf("ValidateTarget(%q) = %v, want path: …%s…", path, err, want)
		}
	}
}
