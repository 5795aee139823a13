package testenv

import (
	"fmt"
	"os"
	"testing"
)

// Main runs the tests of a package whose tests share servers, then stops
// those servers and exits. Call it from TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// With Main, Postgres starts one cluster on first use and every test of the
// binary shares it; without Main, Postgres gives each test its own.
func Main(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	shared.mu.Lock()
	shared.enabled = true
	shared.mu.Unlock()
	code := m.Run()
	if err := stopShared(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// stopShared stops and removes the shared Postgres cluster, if one started.
func stopShared() error {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	pg := shared.pg
	shared.pg, shared.err, shared.enabled = nil, nil, false
	if pg == nil {
		return nil
	}
	if err := pg.proc.stop(); err != nil {
		return err
	}
	if err := os.RemoveAll(pg.Dir); err != nil {
		return fmt.Errorf("testenv: postgres: remove cluster: %w", err)
	}
	return nil
}
