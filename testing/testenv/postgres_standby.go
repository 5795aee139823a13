package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// NewStandby makes a streaming-replication standby of pg — a base backup
// taken with pg_basebackup -R (which writes standby.signal and the
// primary_conninfo) — and starts it on a fresh port. It is read-only until
// Promote. The primary needs nothing beyond initdb's defaults (wal_level
// replica, max_wal_senders, a trust replication entry for 127.0.0.1). The
// standby is stopped and removed when t ends.
func (pg *PostgresServer) NewStandby(t testing.TB) *PostgresServer {
	t.Helper()
	sb, err := pg.standby(t.TempDir())
	if err != nil {
		fail(t, err)
		return nil
	}
	t.Cleanup(func() {
		sb.proc.cleanup(t)
		if err := os.RemoveAll(sb.Dir); err != nil {
			t.Errorf("testenv: postgres standby: remove cluster: %v", err)
		}
	})
	return sb
}

func (pg *PostgresServer) standby(logDir string) (*PostgresServer, error) {
	cred, err := postgresCredential()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "rekey-pg-standby-")
	if err != nil {
		return nil, fmt.Errorf("testenv: postgres standby: %w", err)
	}
	if err := preparePostgresDir(dir, cred); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	logPath := filepath.Join(logDir, "postgres-standby.log")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(pg.binDir, "pg_basebackup"),
		"-h", "127.0.0.1", "-p", strconv.Itoa(pg.Port), "-U", "postgres",
		"-D", filepath.Join(dir, "data"), "-R", "-X", "stream", "--no-sync", "-c", "fast")
	cmd.Dir = dir
	cmd.Env = mergeEnv(os.Environ(), []string{"PG"}, nil)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	out, err := cmd.CombinedOutput()
	if werr := os.WriteFile(logPath, out, 0o644); werr != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("testenv: postgres standby: write log: %w", werr)
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("testenv: postgres standby: pg_basebackup: %w\n%s", err, out)
	}
	sb, err := launchPostgres(pg.binDir, dir, filepath.Join(dir, "data"), logPath, cred)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return sb, nil
}

// Promote turns a standby into a primary (pg_ctl promote, waiting until
// it accepts writes).
func (pg *PostgresServer) Promote() error {
	cred, err := postgresCredential()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(pg.binDir, "pg_ctl"), "promote", "-w", "-t", "50", "-D", filepath.Join(pg.Dir, "data"))
	cmd.Env = mergeEnv(os.Environ(), []string{"PG"}, nil)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("testenv: postgres: pg_ctl promote: %w: %s", err, out)
	}
	return nil
}
