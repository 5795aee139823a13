package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// PostgresBinDirEnv names the directory holding initdb, postgres, psql and
// pg_isready; without it testenv uses /usr/lib/postgresql/15/bin.
const PostgresBinDirEnv = "REKEY_PG_BINDIR"

const defaultPostgresBinDir = "/usr/lib/postgresql/15/bin"

// PostgresServer is a PostgreSQL 15 cluster with trust authentication for
// the superuser "postgres", fsync off, and a private Unix socket directory.
type PostgresServer struct {
	// DSN connects as postgres to the postgres database:
	// postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable.
	// Prefer a database of the test's own from CreateDatabase.
	DSN  string
	Port int
	Dir  string // cluster directory: data/, the socket and the log
	Log  string // path of the server's log file

	binDir string
	shared bool
	proc   *process
}

// shared is the cluster that Postgres hands to every test of a binary whose
// TestMain calls Main.
var shared struct {
	mu      sync.Mutex
	enabled bool // set by Main
	pg      *PostgresServer
	err     error // the failure of the one start attempt
}

// Postgres returns a PostgreSQL server for t. If the test binary's TestMain
// calls Main, every test gets the same cluster, started by the first caller
// and stopped when the binary exits; tests then isolate themselves with
// CreateDatabase and must not Stop or Pause it (those return an error).
// Without Main it is NewPostgres: a private cluster stopped when t ends.
func Postgres(t testing.TB) *PostgresServer {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.enabled {
		return NewPostgres(t)
	}
	if shared.pg == nil && shared.err == nil {
		start := time.Now()
		shared.pg, shared.err = startPostgres("")
		if shared.err == nil {
			shared.pg.shared = true
			t.Logf("testenv: shared postgres %s ready in %s (log %s)", shared.pg.DSN, time.Since(start).Round(time.Millisecond), shared.pg.Log)
		}
	}
	if shared.err != nil {
		fail(t, shared.err)
		return nil
	}
	return shared.pg
}

// NewPostgres starts a private PostgreSQL cluster for t and stops and removes
// it when t ends. initdb makes it take a second or two; use it for tests
// that Stop, Start, Pause or Resume the server, and Postgres otherwise.
func NewPostgres(t testing.TB) *PostgresServer {
	t.Helper()
	start := time.Now()
	pg, err := startPostgres(t.TempDir())
	if err != nil {
		fail(t, err)
		return nil
	}
	t.Cleanup(func() {
		pg.proc.cleanup(t)
		if err := os.RemoveAll(pg.Dir); err != nil {
			t.Errorf("testenv: postgres: remove cluster: %v", err)
		}
	})
	t.Logf("testenv: postgres %s ready in %s (log %s)", pg.DSN, time.Since(start).Round(time.Millisecond), pg.Log)
	return pg
}

// startPostgres initialises a cluster in a new directory and starts it. The
// directory is created in os.TempDir, not under logDir's parents, because
// the postgres user must be able to reach it; the log goes to logDir when
// set.
func startPostgres(logDir string) (*PostgresServer, error) {
	binDir := os.Getenv(PostgresBinDirEnv)
	if binDir == "" {
		binDir = defaultPostgresBinDir
	}
	for _, name := range []string{"initdb", "postgres", "pg_isready", "psql"} {
		if !isExecutable(filepath.Join(binDir, name)) {
			return nil, &missingError{server: "postgres", hint: fmt.Sprintf("no executable %s in %s ($%s)", name, binDir, PostgresBinDirEnv)}
		}
	}
	cred, err := postgresCredential()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "rekey-pg-")
	if err != nil {
		return nil, fmt.Errorf("testenv: postgres: %w", err)
	}
	if err := preparePostgresDir(dir, cred); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if logDir == "" {
		logDir = dir
	}
	logPath := filepath.Join(logDir, "postgres.log")
	if err := initdb(binDir, dir, logPath, cred); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	pg, err := launchPostgres(binDir, dir, filepath.Join(dir, "data"), logPath, cred)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return pg, nil
}

// launchPostgres starts the cluster in dataDir on a fresh port, its socket
// in dir.
func launchPostgres(binDir, dir, dataDir, logPath string, cred *syscall.Credential) (*PostgresServer, error) {
	var pg *PostgresServer
	proc, err := launch(func(port int) (*process, error) {
		pg = &PostgresServer{
			DSN:    postgresDSN(port, "postgres"),
			Port:   port,
			Dir:    dir,
			Log:    logPath,
			binDir: binDir,
		}
		return &process{
			name: "postgres",
			path: filepath.Join(binDir, "postgres"),
			args: []string{
				"-D", dataDir,
				"-p", strconv.Itoa(port),
				"-k", dir,
				"-c", "listen_addresses=127.0.0.1",
				"-c", "fsync=off",
				"-c", "synchronous_commit=off",
				"-c", "full_page_writes=off",
				"-c", "max_connections=200",
			},
			dropEnv:      []string{"PG"},
			dir:          dir,
			logPath:      logPath,
			addr:         "127.0.0.1:" + strconv.Itoa(port),
			cred:         cred,
			stopSig:      syscall.SIGINT, // fast shutdown: disconnect clients
			ready:        pg.ready,
			readyTimeout: 60 * time.Second,
		}, nil
	})
	if err != nil {
		return nil, err
	}
	pg.proc = proc
	return pg, nil
}

// postgresCredential returns the postgres user's credential when running as
// root (the server refuses to run as root), and nil otherwise.
func postgresCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("testenv: postgres: running as root needs a postgres user: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("testenv: postgres: uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("testenv: postgres: gid %q: %w", u.Gid, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func preparePostgresDir(dir string, cred *syscall.Credential) error {
	if err := os.Chmod(dir, 0o755); err != nil {
		return fmt.Errorf("testenv: postgres: %w", err)
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fmt.Errorf("testenv: postgres: %w", err)
		}
	}
	return nil
}

func initdb(binDir, dir, logPath string, cred *syscall.Credential) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "initdb"),
		"-D", filepath.Join(dir, "data"),
		"-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-locale", "--no-sync")
	cmd.Dir = dir
	cmd.Env = mergeEnv(os.Environ(), []string{"PG", "LC_", "LANG"}, nil)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	out, err := cmd.CombinedOutput()
	if werr := os.WriteFile(logPath, out, 0o644); werr != nil {
		return fmt.Errorf("testenv: postgres: write log: %w", werr)
	}
	if err != nil {
		return fmt.Errorf("testenv: postgres: initdb: %w\n--- initdb output ---\n%s", err, out)
	}
	return nil
}

func postgresDSN(port int, db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", port, db)
}

// ready runs pg_isready against the TCP listener.
func (pg *PostgresServer) ready(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, filepath.Join(pg.binDir, "pg_isready"),
		"-q", "-h", "127.0.0.1", "-p", strconv.Itoa(pg.Port), "-U", "postgres", "-d", "postgres", "-t", "2")
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("pg_isready: %w", err)
	}
	return nil
}

// Exec runs SQL as the postgres superuser in database db with psql and
// returns its unaligned, tuples-only output.
func (pg *PostgresServer) Exec(ctx context.Context, db, sql string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(pg.binDir, "psql"),
		"-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
		"-h", "127.0.0.1", "-p", strconv.Itoa(pg.Port), "-U", "postgres", "-d", db,
		"-c", sql)
	cmd.Env = mergeEnv(os.Environ(), []string{"PG"}, []string{"PGCONNECT_TIMEOUT=5"})
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("testenv: postgres: psql in %s: %w: %s", db, err, strings.TrimSpace(string(out)))
	}
	return strings.TrimRight(string(out), "\n"), nil
}

var dbSeq atomic.Int64

// CreateDatabase creates an empty database for t, named after the test,
// drops it when t ends, and returns its DSN.
func (pg *PostgresServer) CreateDatabase(t testing.TB) string {
	t.Helper()
	name := databaseName(dbSeq.Add(1), t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := pg.Exec(ctx, "postgres", `CREATE DATABASE "`+name+`"`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := pg.Exec(ctx, "postgres", `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`); err != nil {
			t.Logf("testenv: drop database %s: %v", name, err) // the server may have been stopped on purpose
		}
	})
	return postgresDSN(pg.Port, name)
}

// databaseName turns a test name into a unique lower-case identifier of at
// most 63 bytes.
func databaseName(seq int64, testName string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "t%d_", seq)
	for _, r := range strings.ToLower(testName) {
		if b.Len() >= 63 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

var errShared = errors.New("testenv: postgres: the shared cluster serves every test in the binary; use NewPostgres to stop, start, pause or resume one")

// Stop stops the server and waits until its port is free.
func (pg *PostgresServer) Stop() error {
	if pg.shared {
		return errShared
	}
	return pg.proc.stop()
}

// Start starts a stopped server again on the same port. The cluster is on
// disk, so databases and data are kept.
func (pg *PostgresServer) Start() error {
	if pg.shared {
		return errShared
	}
	return pg.proc.start()
}

// Pause freezes the server with SIGSTOP: connections are accepted but never
// answered, as in a hang.
func (pg *PostgresServer) Pause() error {
	if pg.shared {
		return errShared
	}
	return pg.proc.pause()
}

// Resume continues a paused server with SIGCONT.
func (pg *PostgresServer) Resume() error {
	if pg.shared {
		return errShared
	}
	return pg.proc.resume()
}
