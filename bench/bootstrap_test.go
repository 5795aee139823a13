package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkBootstrap10k starts the real daemon on a configuration of 10,000
// keys with default settings (random issuer, file sink, SQLite, the log
// notifier on) and measures how fast it bootstraps them all: rotations/s,
// and the daemon's peak RSS (VmHWM) during it. Then `rekey status` over the
// 10,000 keys (status-ms, best of 3). Targets: ≥ 250 rotations/s, ≤ 150 MB,
// status ≤ 300 ms. REKEY_BENCH_KEYS overrides the number of keys,
// REKEY_BENCH_CONCURRENCY sets daemon.concurrency (default: unset, 4).
//
//	go test -run '^$' -bench BenchmarkBootstrap10k -benchtime 1x ./bench/
func BenchmarkBootstrap10k(b *testing.B) {
	keys, err := strconv.Atoi(envOr("REKEY_BENCH_KEYS", "10000"))
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	bin := buildRekey(b, dir)
	for b.Loop() {
		run := filepath.Join(dir, fmt.Sprintf("run-%d", time.Now().UnixNano()))
		if err := os.MkdirAll(run, 0o700); err != nil {
			b.Fatal(err)
		}
		cfgPath := writeBootstrapConfig(b, run, keys)
		daemon := exec.Command(bin, "run", "-c", cfgPath)
		logf, err := os.Create(filepath.Join(run, "daemon.log"))
		if err != nil {
			b.Fatal(err)
		}
		daemon.Stdout, daemon.Stderr = logf, logf
		start := time.Now()
		if err := daemon.Start(); err != nil {
			b.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { _ = daemon.Wait(); close(exited) }()
		var peak int64
		done := false
		for deadline := start.Add(30 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if rss := vmHWM(daemon.Process.Pid); rss > peak {
				peak = rss
			}
			if n := countFiles(filepath.Join(run, "secrets")); n == keys && bootstrapsDone(run) {
				done = true
				break
			}
			select {
			case <-exited:
				log, _ := os.ReadFile(filepath.Join(run, "daemon.log"))
				b.Fatalf("the daemon exited during the bootstrap:\n%s", tail(log))
			default:
			}
		}
		took := time.Since(start)
		if rss := vmHWM(daemon.Process.Pid); rss > peak {
			peak = rss
		}
		if !done {
			_ = daemon.Process.Kill()
			<-exited
			log, _ := os.ReadFile(filepath.Join(run, "daemon.log"))
			b.Fatalf("bootstrap of %d keys not done after %s; %d delivered\n%s", keys, took, countFiles(filepath.Join(run, "secrets")), tail(log))
		}
		// rekey status against the running daemon's store.
		best := time.Duration(1 << 62)
		for range 3 {
			s := time.Now()
			out, err := exec.Command(bin, "status", "-c", cfgPath).CombinedOutput()
			if err != nil {
				b.Fatalf("status: %v\n%s", err, tail(out))
			}
			best = min(best, time.Since(s))
		}
		_ = daemon.Process.Signal(syscall.SIGTERM)
		<-exited
		b.ReportMetric(float64(keys)/took.Seconds(), "rotations/s")
		b.ReportMetric(float64(peak)/1024, "MB-peak-rss")
		b.ReportMetric(float64(best.Microseconds())/1000, "status-ms")
	}
}

func writeBootstrapConfig(b *testing.B, dir string, keys int) string {
	conc := ""
	if c := os.Getenv("REKEY_BENCH_CONCURRENCY"); c != "" {
		conc = ", concurrency: " + c
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, `daemon: {listen: "127.0.0.1:0", address_file: %[1]s/rekey.addr, admin_listen: "127.0.0.1:0", admin_address_file: %[1]s/admin.addr%[2]s}
store: {type: sqlite, path: %[1]s/rekey.db}
issuers: [{name: rnd, type: random, ledger: %[1]s/ledger.json}]
sinks: [{name: files, type: file, dir: %[1]s/secrets}]
notifiers: [{name: log, type: log}]
keys:
`, dir, conc)
	for i := range keys {
		fmt.Fprintf(&cfg, "  - {name: k%05d, issuer: rnd, sinks: [{sink: files}]}\n", i)
	}
	path := filepath.Join(dir, "rekey.yaml")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	return path
}

// vmHWM is the peak resident set of process pid in kB (0 if unknown).
func vmHWM(pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

func countFiles(dir string) int {
	es, _ := os.ReadDir(dir)
	return len(es)
}
