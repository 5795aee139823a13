package bench

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/rekeyhq/rekey/testing/kubeadapt"
)

// BenchmarkExposureLoad runs the real daemon with 600 live keys and sends
// signed exposure reports at 200/s for 30 s with testing/cmd/rekey-loadgen
// (the tokens cycle through the live keys, so the first report of each key
// starts an emergency rotation and the rest are duplicates). Reported:
// reports sent, recorded (nothing may be lost), and p50/p99 of the time from
// a report's receipt (recorded before the 2xx) to the revoke, read from the
// store (the audit event written when the issuer answered: an upper bound
// of receipt → revoke request). Targets (issue 14): p99 ≤ 20 ms at 200/s,
// and ≤ 5 ms idle with 10,000 keys:
//
//	REKEY_BENCH_KEYS=10000 REKEY_BENCH_RATE=10 REKEY_BENCH_DURATION=60s \
//	  go test -run '^$' -bench BenchmarkExposureLoad -benchtime 1x ./bench/
//
// REKEY_BENCH_KEYS, _RATE and _DURATION override the defaults.
func BenchmarkExposureLoad(b *testing.B) {
	knownKeys, err := strconv.Atoi(envOr("REKEY_BENCH_KEYS", "600"))
	if err != nil || knownKeys < 1 {
		b.Fatalf("REKEY_BENCH_KEYS: want a positive number of keys, got %q", os.Getenv("REKEY_BENCH_KEYS"))
	}
	rate, dur := envOr("REKEY_BENCH_RATE", "200"), envOr("REKEY_BENCH_DURATION", "30s")
	dir := b.TempDir()
	bin := buildRekey(b, dir)
	loadgen := filepath.Join(dir, "rekey-loadgen")
	if out, err := exec.Command("go", "build", "-o", loadgen, "../testing/cmd/rekey-loadgen").CombinedOutput(); err != nil {
		b.Fatalf("build loadgen: %v\n%s", err, out)
	}
	// The daemon listens on port 0 and writes the port it bound: a port
	// picked here and released could be taken before the daemon binds it.
	addrFile := filepath.Join(dir, "rekey.addr")
	secretFile := filepath.Join(dir, "exposure-secret")
	if err := os.WriteFile(secretFile, []byte("bench-exposure-signing-secret-0123456789"), 0o600); err != nil {
		b.Fatal(err)
	}
	// The issuer is the http issuer against the Kubeadapt-style API (in this
	// process): revoke calls run in parallel as against a real SaaS. (The
	// random issuer rewrites one ledger file per call, serially: it would
	// measure that file, not the engine.)
	ka := kubeadapt.New(kubeadapt.Options{AdminToken: "bench-admin-token-0123456789abcdef"})
	if err := ka.Start("127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	defer ka.Close()
	if err := os.WriteFile(filepath.Join(dir, "ka-token"), []byte(ka.AdminToken()), 0o600); err != nil {
		b.Fatal(err)
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, `daemon: {listen: "127.0.0.1:0", admin_listen: "127.0.0.1:0", address_file: %s, concurrency: 16, poll_interval: 50ms, log_level: warn, schedule: "@every 1h"}
store: {type: sqlite, path: %s/rekey.db}
issuers:
  - name: ka
    type: http
    base_url: %s
    auth: {prefix: "Bearer ", token_file: %s/ka-token}
    mint: {path: /admin/v1/api-keys, body: '{"name": {{json .Name}}, "scopes": ["clusters:read"]}', success: [201], id_path: id, secret_path: secret}
    revoke: {path: '/admin/v1/api-keys/{{pathescape .ID}}', success: [204], already_revoked: [409]}
    list: {path: '/admin/v1/api-keys?name={{urlquery .Name}}', items_path: data, id_path: id, name_path: name, status_path: status, revoked_statuses: [revoked]}
sinks: [{name: files, type: file, dir: %s/secrets}]
webhooks: [{name: leaks, type: exposure, secret_file: %s, rate_per_minute: 100000}]
breaker: {max: -1}   # the load is 600 real emergencies: measure them, not the breaker
defaults: {verify: false}
keys:
`, addrFile, dir, ka.URL(), dir, dir, secretFile)
	for i := range knownKeys {
		fmt.Fprintf(&cfg, "  - {name: k%05d, issuer: ka, sinks: [{sink: files}]}\n", i)
	}
	cfgPath := filepath.Join(dir, "rekey.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	daemon := exec.Command(bin, "run", "-c", cfgPath)
	logf, _ := os.Create(filepath.Join(dir, "daemon.log"))
	daemon.Stdout, daemon.Stderr = logf, logf
	if err := daemon.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = daemon.Process.Signal(syscall.SIGTERM); _ = daemon.Wait() }()

	// Wait for the daemon's address and every key's bootstrap, then collect
	// the live tokens.
	start := time.Now()
	var tokens []string
	var addr string
	for deadline := time.Now().Add(5 * time.Minute); ; {
		if raw, err := os.ReadFile(addrFile); err == nil && addr == "" {
			addr = strings.TrimSpace(string(raw))
		}
		files, _ := filepath.Glob(filepath.Join(dir, "secrets", "*.json"))
		if addr != "" && len(files) == knownKeys && bootstrapsDone(dir) {
			for _, f := range files {
				var doc struct {
					Current struct{ Value string } `json:"current"`
				}
				raw, _ := os.ReadFile(f)
				_ = json.Unmarshal(raw, &doc)
				tokens = append(tokens, doc.Current.Value)
			}
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("bootstrap of %d keys not done in 5m", knownKeys)
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.Logf("bootstrapped %d keys in %s", knownKeys, time.Since(start).Round(time.Millisecond))
	tokFile := filepath.Join(dir, "tokens.txt")
	if err := os.WriteFile(tokFile, []byte(strings.Join(tokens, "\n")+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		out, err := exec.Command(loadgen, "-url", "http://"+addr+"/v1/events/exposure", "-rate", rate, "-duration", dur,
			"-secret-file", secretFile, "-tokens", tokFile, "-json").Output()
		if err != nil {
			b.Fatalf("loadgen: %v\n%s", err, out)
		}
		var sum map[string]any
		_ = json.Unmarshal(out, &sum)
		b.Logf("loadgen: %s", strings.TrimSpace(string(out)))
		if sent, ok := sum["sent"].(float64); ok {
			b.ReportMetric(sent, "reports-sent")
		}
	}
	b.StopTimer()
	// Let the emergency rotations finish their revokes: wait until no
	// rotation is active and every report is processed (bounded; what is
	// still unfinished then is reported below).
	for deadline := time.Now().Add(2 * time.Minute); !bootstrapsDone(dir) || unprocessedReports(dir) != 0; {
		if time.Now().After(deadline) {
			b.Log("rotations or reports still unfinished after 2m")
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, "rekey.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var recorded int
	if err := db.QueryRow(`SELECT COUNT(*) FROM inbound_events WHERE kind = 'exposure'`).Scan(&recorded); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(recorded), "reports-recorded")
	var emergencies, revoked, unfinished int
	_ = db.QueryRow(`SELECT COUNT(*) FROM rotations WHERE trigger_kind = 'exposure'`).Scan(&emergencies)
	_ = db.QueryRow(`SELECT COUNT(DISTINCT rotation_id) FROM audit_events WHERE action = 'revoked' AND rotation_id IN (SELECT id FROM rotations WHERE trigger_kind = 'exposure')`).Scan(&revoked)
	_ = db.QueryRow(`SELECT COUNT(*) FROM inbound_events WHERE processed_at = ''`).Scan(&unfinished)
	b.Logf("emergency rotations %d, revoked %d, inbound events not processed %d", emergencies, revoked, unfinished)
	// Receipt of the first report of each emergency rotation → its revoke.
	first := map[string]time.Time{}
	rows, err := db.Query(`SELECT received_at, result FROM inbound_events WHERE kind = 'exposure'`)
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
		var rcv, result string
		if err := rows.Scan(&rcv, &result); err != nil {
			b.Fatal(err)
		}
		var res struct{ RotationID string }
		if json.Unmarshal([]byte(result), &res) != nil || res.RotationID == "" {
			continue
		}
		t, _ := time.Parse(time.RFC3339Nano, rcv)
		if f, ok := first[res.RotationID]; !ok || t.Before(f) {
			first[res.RotationID] = t
		}
	}
	rows.Close()
	// The whole latency, and its two halves: receipt → rotation created
	// (intake) and created → revoked (the engine and the issuer).
	var lat, intake, engine []time.Duration
	for id, rcv := range first {
		var created, rev string
		if err := db.QueryRow(`SELECT r.created_at, a.at FROM rotations r JOIN audit_events a ON a.rotation_id = r.id
			WHERE r.id = ? AND a.action = 'revoked' ORDER BY a.seq LIMIT 1`, id).Scan(&created, &rev); err != nil {
			continue
		}
		c, _ := time.Parse(time.RFC3339Nano, created)
		t, _ := time.Parse(time.RFC3339Nano, rev)
		lat, intake, engine = append(lat, t.Sub(rcv)), append(intake, c.Sub(rcv)), append(engine, t.Sub(c))
	}
	if len(lat) == 0 {
		b.Fatal("no revoke was measured")
	}
	b.ReportMetric(float64(len(lat)), "revokes")
	b.ReportMetric(percentileMS(lat, 0.5), "p50-ms")
	b.ReportMetric(percentileMS(lat, 0.99), "p99-ms")
	b.ReportMetric(percentileMS(lat, 1), "max-ms")
	b.ReportMetric(percentileMS(intake, 0.99), "intake-p99-ms")
	b.ReportMetric(percentileMS(engine, 0.99), "engine-p99-ms")
}

// percentileMS sorts ds and returns its p-quantile (nearest rank below) in
// milliseconds.
func percentileMS(ds []time.Duration, p float64) float64 {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return float64(ds[int(p*float64(len(ds)-1))].Microseconds()) / 1000
}

func bootstrapsDone(dir string) bool {
	db, err := sql.Open("sqlite", filepath.Join(dir, "rekey.db"))
	if err != nil {
		return false
	}
	defer db.Close()
	var active int
	if err := db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM rotations WHERE finished = 0`).Scan(&active); err != nil {
		return false
	}
	return active == 0
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// unprocessedReports counts the exposure reports recorded but not yet
// acted on, or -1 when the store cannot be read.
func unprocessedReports(dir string) int {
	db, err := sql.Open("sqlite", filepath.Join(dir, "rekey.db"))
	if err != nil {
		return -1
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM inbound_events WHERE processed_at = ''`).Scan(&n); err != nil {
		return -1
	}
	return n
}
