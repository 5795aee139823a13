// Package testenv starts and stops the real servers rekey's tests talk to —
// HashiCorp Vault in dev mode, moto_server (AWS Secrets Manager and IAM),
// Prometheus and PostgreSQL — each as a child process bound to 127.0.0.1 on a
// free port, tracked by PID, logged to a file under the test's temporary
// directory and killed (whole process group) by t.Cleanup. A server that
// cannot start fails the test with the reason and the tail of its log; it is
// never skipped, except that a developer without the binaries may set
// REKEY_TEST_SKIP_MISSING=1 to turn a missing binary into a skip (CI never
// sets it). Every server can be stopped and started again on the same port,
// or paused and resumed with SIGSTOP/SIGCONT, to simulate outages and hangs.
// PostgreSQL is slow to initialise, so a test binary whose TestMain calls
// Main shares one cluster between its tests; scripts/ci-deps.sh installs the
// binaries.
package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// SkipMissingEnv is the environment variable that, set to "1", turns a
// missing server binary into t.Skip instead of a failure. CI never sets it;
// a binary that exists but fails to start always fails the test.
const SkipMissingEnv = "REKEY_TEST_SKIP_MISSING"

// missingError reports a server binary that could not be found.
type missingError struct {
	server string
	hint   string
}

func (e *missingError) Error() string {
	return fmt.Sprintf("testenv: %s binary not found (%s); run scripts/ci-deps.sh", e.server, e.hint)
}

// fail ends the test because a server could not be provided: a skip when
// the binary is missing and SkipMissingEnv is set, a fatal error otherwise.
func fail(t testing.TB, err error) {
	t.Helper()
	var missing *missingError
	if errors.As(err, &missing) && os.Getenv(SkipMissingEnv) == "1" {
		t.Skipf("%v (skipping because %s=1)", err, SkipMissingEnv)
	}
	t.Fatal(err)
}

// findBinary returns the first of envVar's value, name on $PATH and the
// fallback paths that names an executable file.
func findBinary(server, envVar, name string, fallbacks ...string) (string, error) {
	if envVar != "" {
		if p := os.Getenv(envVar); p != "" {
			if isExecutable(p) {
				return p, nil
			}
			return "", &missingError{server: server, hint: fmt.Sprintf("$%s=%s is not an executable file", envVar, p)}
		}
	}
	if name != "" {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	for _, p := range fallbacks {
		if isExecutable(p) {
			return p, nil
		}
	}
	hint := fmt.Sprintf("looked for %q on $PATH", name)
	if envVar != "" {
		hint = fmt.Sprintf("$%s unset, %s", envVar, hint)
	}
	if len(fallbacks) > 0 {
		hint += fmt.Sprintf(" and in %v", fallbacks)
	}
	return "", &missingError{server: server, hint: hint}
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// homeDir returns $HOME, or "" when it is unknown.
func homeDir() string {
	home, _ := os.UserHomeDir()
	return home
}

// homeCache returns $HOME/.cache/rekey/name.
func homeCache(name string) string {
	return filepath.Join(homeDir(), ".cache", "rekey", name)
}
