package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const unitPath = "deploy/systemd/rekey.service"

// unitSettings returns the [Service] section's assignments, each key with
// every value it is given (repeated keys accumulate in systemd).
func unitSettings(t *testing.T, unit string) map[string][]string {
	t.Helper()
	settings := map[string][]string{}
	section := ""
	for line := range strings.SplitSeq(unit, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: not an assignment: %q", unitPath, line)
			}
			settings[k] = append(settings[k], v)
		}
	}
	return settings
}

// TestSystemdUnitHardening checks the hardening the unit promises, so an
// edit that drops one is noticed. systemd-analyze (below) checks that the
// directives parse; this checks that they are there.
func TestSystemdUnitHardening(t *testing.T) {
	s := unitSettings(t, read(t, unitPath))
	want := map[string]string{
		"DynamicUser":             "yes",
		"StateDirectory":          "rekey",
		"WorkingDirectory":        "/var/lib/rekey",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"PrivateDevices":          "yes",
		"NoNewPrivileges":         "yes",
		"CapabilityBoundingSet":   "",
		"AmbientCapabilities":     "",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
		"RestrictNamespaces":      "yes",
		"RestrictSUIDSGID":        "yes",
		"MemoryDenyWriteExecute":  "yes",
		"LockPersonality":         "yes",
		"SystemCallArchitectures": "native",
		"UMask":                   "0077",
	}
	for k, v := range want {
		got, ok := s[k]
		if !ok || got[len(got)-1] != v {
			t.Errorf("%s: want %s=%s, got %q", unitPath, k, v, got)
		}
	}
	if f := s["SystemCallFilter"]; len(f) == 0 || f[0] != "@system-service" {
		t.Errorf("%s: want SystemCallFilter=@system-service first, got %q", unitPath, f)
	}
	if e := s["ExecStart"]; len(e) != 1 || !regexp.MustCompile(`^/\S+/rekey run -c /etc/rekey/rekey\.yaml$`).MatchString(e[0]) {
		t.Errorf("%s: want one ExecStart running `rekey run -c /etc/rekey/rekey.yaml`, got %q", unitPath, e)
	}
}

// TestSystemdUnitVerifies runs the real systemd-analyze: `verify` (which
// works without systemd as PID 1, but checks that ExecStart's binary
// exists, so the copy it checks runs this test binary instead of
// /usr/local/bin/rekey) must print nothing — it reports unknown or
// unparsable directives on stderr and still exits 0 — and `security
// --offline` must rate the unit's exposure at most 2.0 (of 10).
func TestSystemdUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed: only TestSystemdUnitHardening's static check ran")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	unit := read(t, unitPath)
	execStart := regexp.MustCompile(`(?m)^ExecStart=\S+`)
	if !execStart.MatchString(unit) {
		t.Fatalf("%s: no ExecStart", unitPath)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "rekey.service")
	if err := os.WriteFile(path, []byte(execStart.ReplaceAllString(unit, "ExecStart="+self)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runIn(dir, analyze, "verify", path)
	if err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unitPath, err, out)
	}
	out, err = runIn(dir, analyze, "security", "--offline=yes", "--threshold=20", "--no-pager", path)
	if err != nil {
		t.Errorf("systemd-analyze security --offline=yes --threshold=20 %s (exposure above 2.0?): %v\n%s", unitPath, err, out)
	}
	if m := regexp.MustCompile(`Overall exposure level for \S+: (\S+)`).FindStringSubmatch(out); m != nil {
		t.Logf("systemd-analyze security: exposure %s", m[1])
	}
}

func runIn(dir, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	b, err := cmd.CombinedOutput()
	return string(b), err
}
