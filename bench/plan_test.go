package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/store/sqlite"
	"github.com/rekeyhq/rekey/store/sqlstore"
)

const planKeys = 100_000

// BenchmarkPlanCLI100k runs the real `rekey plan -o json` over 100,000 keys
// that all have a current credential in the SQLite store, and reports the
// wall time per run and the process's peak RSS (targets: ≤ 1 s, ≤ 256 MB),
// with the configuration as YAML and as JSON (what tooling that generates
// 100,000 keys would write).
func BenchmarkPlanCLI100k(b *testing.B) {
	dir := b.TempDir()
	bin := buildRekey(b, dir)
	yamlCfg, jsonCfg := writePlanFixture(b, dir, planKeys)
	for _, bc := range []struct{ name, cfg string }{{"yaml", yamlCfg}, {"json", jsonCfg}} {
		b.Run(bc.name, func(b *testing.B) {
			var maxRSS int64
			var total time.Duration
			for b.Loop() {
				start := time.Now()
				cmd := exec.Command(bin, "plan", "-c", bc.cfg, "-o", "json")
				out, err := cmd.Output()
				if err != nil {
					b.Fatalf("plan: %v\n%s", err, tail(out))
				}
				total += time.Since(start)
				if !bytes.Contains(out, []byte(`"key-099999"`)) {
					b.Fatal("plan output lacks the last key")
				}
				if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru.Maxrss > maxRSS {
					maxRSS = ru.Maxrss // kilobytes on Linux
				}
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/plan")
			b.ReportMetric(float64(maxRSS)/1024, "MB-peak-rss")
		})
	}
}

func buildRekey(b *testing.B, dir string) string {
	b.Helper()
	bin := filepath.Join(dir, "rekey")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/rekey").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// writePlanFixture writes the same configuration with n keys as YAML and
// as JSON, and a store in which each key has a current generation of a
// different age.
func writePlanFixture(b testing.TB, dir string, n int) (string, string) {
	b.Helper()
	yamlCfg, jsonCfg := filepath.Join(dir, "plan.yaml"), filepath.Join(dir, "plan.json")
	f, err := os.Create(yamlCfg)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintf(w, `daemon: {listen: "127.0.0.1:0", log_level: warn}
store: {type: sqlite, path: %s/plan.db}
issuers: [{name: demo, type: random, ledger: %s/ledger.json}]
sinks: [{name: files, type: file, dir: %s/secrets}]
defaults: {policies: {max_age: 90d, warn_before: 14d}}
keys:
`, dir, dir, dir)
	for i := range n {
		fmt.Fprintf(w, "  - {name: key-%06d, issuer: demo, owners: [team-%d@example.com], sinks: [{sink: files}]}\n", i, i%50)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	type sinkRef struct {
		Sink string `json:"sink"`
	}
	type key struct {
		Name   string    `json:"name"`
		Issuer string    `json:"issuer"`
		Owners []string  `json:"owners"`
		Sinks  []sinkRef `json:"sinks"`
	}
	doc := map[string]any{
		"daemon":   map[string]any{"listen": "127.0.0.1:0", "log_level": "warn"},
		"store":    map[string]any{"type": "sqlite", "path": dir + "/plan.db"},
		"issuers":  []any{map[string]any{"name": "demo", "type": "random", "ledger": dir + "/ledger.json"}},
		"sinks":    []any{map[string]any{"name": "files", "type": "file", "dir": dir + "/secrets"}},
		"defaults": map[string]any{"policies": map[string]any{"max_age": "90d", "warn_before": "14d"}},
	}
	keys := make([]key, n)
	for i := range keys {
		keys[i] = key{Name: fmt.Sprintf("key-%06d", i), Issuer: "demo", Owners: []string{fmt.Sprintf("team-%d@example.com", i%50)}, Sinks: []sinkRef{{"files"}}}
	}
	doc["keys"] = keys
	jb, err := json.Marshal(doc)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(jsonCfg, jb, 0o600); err != nil {
		b.Fatal(err)
	}

	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "plan.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	tx, err := st.DB().BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	stmt, err := tx.Prepare(`INSERT INTO credentials (key, generation, name, issuer_id, fingerprint, state, rotation_id, created_at) VALUES (?, 1, ?, ?, ?, 'current', '', ?)`)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	for i := range n {
		key := fmt.Sprintf("key-%06d", i)
		created := now.Add(-time.Duration(i%120) * 24 * time.Hour)
		if _, err := stmt.Exec(key, key+"-v1", fmt.Sprintf("rnd_%016x", i), fmt.Sprintf("%064x", i), sqlstore.TimeText(created)); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	return yamlCfg, jsonCfg
}

func tail(b []byte) []byte {
	if len(b) > 2000 {
		return b[len(b)-2000:]
	}
	return b
}
