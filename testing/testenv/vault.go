package testenv

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// VaultBinEnv names the Vault binary to run; without it testenv uses
// $HOME/.cache/rekey/vault-1.13.0, which scripts/ci-deps.sh builds.
const VaultBinEnv = "REKEY_VAULT_BIN"

// VaultRootToken is the root token of every dev-mode Vault started here.
const VaultRootToken = "root"

// VaultServer is a dev-mode Vault 1.13 server: in memory, unsealed, with
// KV v2 mounted at secret/.
type VaultServer struct {
	Addr  string // http://127.0.0.1:PORT
	Token string // the root token, VaultRootToken
	Port  int
	Log   string // path of the server's log file

	proc *process
}

// Vault starts a dev-mode Vault server for t and stops it when t ends.
func Vault(t testing.TB) *VaultServer {
	t.Helper()
	bin, err := findBinary("vault", VaultBinEnv, "", homeCache("vault-1.13.0"))
	if err != nil {
		fail(t, err)
		return nil
	}
	dir := t.TempDir()
	var v *VaultServer
	start := time.Now()
	proc, err := launch(func(port int) (*process, error) {
		v = &VaultServer{
			Addr:  fmt.Sprintf("http://127.0.0.1:%d", port),
			Token: VaultRootToken,
			Port:  port,
			Log:   filepath.Join(dir, "vault.log"),
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		health := v.Addr + "/v1/sys/health"
		return &process{
			name: "vault",
			path: bin,
			args: []string{"server", "-dev",
				"-dev-root-token-id=" + VaultRootToken,
				"-dev-listen-address=" + addr,
			},
			// Dev mode writes ~/.vault-token: keep it in the temp dir,
			// and ignore the developer's VAULT_* settings.
			env:          []string{"HOME=" + dir},
			dropEnv:      []string{"VAULT_"},
			dir:          dir,
			logPath:      v.Log,
			addr:         addr,
			ready:        func(ctx context.Context) error { return httpOK(ctx, health) },
			readyTimeout: 60 * time.Second,
		}, nil
	})
	if err != nil {
		fail(t, err)
		return nil
	}
	v.proc = proc
	t.Cleanup(func() { proc.cleanup(t) })
	t.Logf("testenv: vault %s ready in %s (log %s)", v.Addr, time.Since(start).Round(time.Millisecond), v.Log)
	return v
}

// Env returns VAULT_ADDR and VAULT_TOKEN for a child process.
func (v *VaultServer) Env() []string {
	return []string{"VAULT_ADDR=" + v.Addr, "VAULT_TOKEN=" + v.Token}
}

// Stop stops the server and waits until its port is free. The test's
// cleanup stops it anyway; Stop is for outage tests.
func (v *VaultServer) Stop() error { return v.proc.stop() }

// Start starts a stopped server again on the same port and waits until it
// is healthy. Dev mode keeps everything in memory, so the restarted server
// is empty: secrets, mounts other than secret/, policies and auth methods
// written before Stop are gone (the root token is "root" again). Use Pause
// and Resume for an outage that keeps the data.
func (v *VaultServer) Start() error { return v.proc.start() }

// Pause freezes the server with SIGSTOP: connections are accepted but never
// answered, as in a hang; data is kept. Clients see timeouts, not refusals.
func (v *VaultServer) Pause() error { return v.proc.pause() }

// Resume continues a paused server with SIGCONT.
func (v *VaultServer) Resume() error { return v.proc.resume() }
