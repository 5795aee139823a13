package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	vapi "github.com/hashicorp/vault/api"
	dto "github.com/prometheus/client_model/go"

	"github.com/rekeyhq/rekey/app"
	"github.com/rekeyhq/rekey/config"
	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/testing/testenv"
)

// Rotating 200 keys, each delivered to Vault KV v2 and to Secrets Manager
// (moto), with a zero quiet period: rekey's engine in-process (app.Build +
// Engine.Run with daemon.concurrency rotWorkers and poll_interval 50ms, the
// random issuer, SQLite, every step persisted and audited, verify off)
// against a plain program making the same sink calls for each key — stage,
// promote, cleanup, each on both stores before the next, as the engine
// orders them — through the vault and awssm sink types ("sinks-*"), and
// through the raw clients ("bare-*": three check-and-set writes in Vault; a
// put and three label moves in Secrets Manager, version ids known, nothing
// read back), one key at a time and from a pool of rotWorkers; and
// "bare-min-concurrent", the raw calls of rekey's documented minimum
// (docs/ADAPTERS.md: the same writes plus, in each store, the read before
// the first write and the read before the revoke) from the pool.
//
//	go test -run '^$' -bench Rotate200VaultAWS -benchtime 2x ./bench/
//
// One op rotates all 200 keys once. Metrics: rotations/s, ms/200-keys (the
// op's wall time), sm-req/rotation (requests moto answered, from its log),
// client-cpu-ms/rotation (this process: rekey's engine, store and issuer,
// or the plain program), retries/op (moto's Secrets Manager backend is not
// thread-safe and may answer 500 under concurrent requests; every mode
// retries as the engine would), and for rekey its wall-time ratio to the
// concurrent plain modes (x-bare-concurrent, x-bare-min-concurrent,
// x-sinks-concurrent) and the mean time its rotations spent in each phase
// (logged; awaiting_approval
// is the queue: 200 rotations wait for rotWorkers slots). moto serves about
// one request at a time, so every mode is bound by how many Secrets
// Manager requests a rotation makes.
const (
	rotKeys    = 200
	rotWorkers = 16
)

// rotEnv is the two servers and what every mode shares.
type rotEnv struct {
	vault    *testenv.VaultServer
	moto     *testenv.MotoServer
	kv       *vapi.KVv2
	sm       *sm.Client
	tokenDir string
	retries  atomic.Int64
	wall     map[string]time.Duration // mode → wall time of one op
}

func newRotEnv(b *testing.B) *rotEnv {
	b.Helper()
	v, m := testenv.Vault(b), testenv.Moto(b)
	testenv.SetAWSEnv(b) // for the awssm sink's default credential chain
	conf := vapi.DefaultConfig()
	conf.Address, conf.MaxRetries = v.Addr, 0
	vc, err := vapi.NewClient(conf)
	if err != nil {
		b.Fatal(err)
	}
	vc.SetToken(v.Token)
	acfg, err := awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithRegion("us-east-1"), awsconfig.WithRetryMaxAttempts(1))
	if err != nil {
		b.Fatal(err)
	}
	e := &rotEnv{
		vault: v, moto: m, kv: vc.KVv2("secret"),
		sm:       sm.NewFromConfig(acfg, func(o *sm.Options) { o.BaseEndpoint = aws.String(m.Endpoint) }),
		tokenDir: b.TempDir(),
		wall:     map[string]time.Duration{},
	}
	if err := os.WriteFile(filepath.Join(e.tokenDir, "vault-token"), []byte(v.Token), 0o600); err != nil {
		b.Fatal(err)
	}
	return e
}

func BenchmarkRotate200VaultAWS(b *testing.B) {
	e := newRotEnv(b)
	// rekey runs last so that it can report its ratio to the others.
	modes := []struct {
		name string
		run  func(b *testing.B, prefix string)
	}{
		{"bare-sequential", func(b *testing.B, p string) { e.runPlain(b, e.bare(p, false), 1) }},
		{"bare-concurrent", func(b *testing.B, p string) { e.runPlain(b, e.bare(p, false), rotWorkers) }},
		{"bare-min-concurrent", func(b *testing.B, p string) { e.runPlain(b, e.bare(p, true), rotWorkers) }},
		{"sinks-sequential", func(b *testing.B, p string) { e.runPlain(b, e.viaSinks(b, p), 1) }},
		{"sinks-concurrent", func(b *testing.B, p string) { e.runPlain(b, e.viaSinks(b, p), rotWorkers) }},
		{"rekey", e.runRekey},
	}
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			// moto looks a secret up by scanning them all: every mode starts
			// from an empty server so that the order does not skew it.
			if err := e.moto.Reset(); err != nil {
				b.Fatal(err)
			}
			e.retries.Store(0)
			m.run(b, fmt.Sprintf("bench-%s-%d", m.name, time.Now().UnixNano()))
		})
	}
}

// motoRequests counts the requests moto has answered so far (its log has a
// line per request).
func (e *rotEnv) motoRequests(b *testing.B) int {
	raw, err := os.ReadFile(e.moto.Log)
	if err != nil {
		b.Fatal(err)
	}
	return strings.Count(string(raw), `HTTP/1.1" `)
}

// cpuTime is the CPU time this process (the benchmark, and rekey's engine
// when it runs in it) has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// usage is what the servers and this process did since a mark.
type usage struct {
	moto int
	cpu  time.Duration
}

func (e *rotEnv) mark(b *testing.B) usage { return usage{moto: e.motoRequests(b), cpu: cpuTime()} }

// report records the wall time of one op (elapsed is the timed loop's),
// the rates, and per rotation since the mark: the Secrets Manager requests
// and this process's CPU time (the client side: rekey's engine, store and
// issuer, or the plain program).
func (e *rotEnv) report(b *testing.B, name string, ops int, since usage, elapsed time.Duration) {
	n := float64(ops * rotKeys)
	b.ReportMetric(float64(e.motoRequests(b)-since.moto)/n, "sm-req/rotation")
	b.ReportMetric(float64((cpuTime()-since.cpu).Microseconds())/1000/n, "client-cpu-ms/rotation")
	per := elapsed / time.Duration(ops)
	e.wall[name] = per
	b.ReportMetric(rotKeys/per.Seconds(), "rotations/s")
	b.ReportMetric(float64(per.Milliseconds()), "ms/200-keys")
	b.ReportMetric(float64(e.retries.Load())/float64(ops), "retries/op")
}

// rotName is the key, Vault path and secret name of key k.
func rotName(prefix string, k int) string { return fmt.Sprintf("%s/k%03d", prefix, k) }

// runRekey builds the daemon's engine from a configuration with rotKeys
// keys, bootstraps them (not timed), and per op triggers a staged rotation
// of every key and runs the engine until none is active.
func (e *rotEnv) runRekey(b *testing.B, prefix string) {
	ctx := context.Background()
	dir := b.TempDir()
	var y strings.Builder
	fmt.Fprintf(&y, `daemon:
  listen: 127.0.0.1:0
  concurrency: %d
  poll_interval: 50ms
  step_timeout: 60s
  retry_base: 50ms
  retry_max: 1s
  log_level: error
store: {type: sqlite, path: %s/rekey.db}
issuers: [{name: demo, type: random, ledger: %s/ledger.json}]
sinks:
  - {name: vault, type: vault, address: %q, auth: {method: token, token_file: %s/vault-token}}
  - {name: aws, type: awssm, region: us-east-1, endpoint: %q}
traffic: [{name: fixed, type: fixed}]
defaults:
  verify: false
  drain: {source: fixed, quiet_period: 0s, max_wait: 1h, poll_interval: 10ms}
  watch: {period: 0s, poll_interval: 10ms}
keys:
`, rotWorkers, dir, dir, e.vault.Addr, e.tokenDir, e.moto.Endpoint)
	for k := range rotKeys {
		n := rotName(prefix, k)
		fmt.Fprintf(&y, "  - {name: k%03d, issuer: demo, owners: [ops@example.com], sinks: [{sink: vault, path: %s}, {sink: aws, path: %s}]}\n", k, n, n)
	}
	path := filepath.Join(dir, "rekey.yaml")
	if err := os.WriteFile(path, []byte(y.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		b.Fatal(err)
	}
	d, err := app.Build(ctx, cfg, slog.New(slog.DiscardHandler), app.BuildOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = d.Engine.Run(runCtx); close(done) }()
	defer func() { stop(); <-done }()

	rotateAll := func(trigger rotator.Trigger) []string {
		ids := make([]string, 0, rotKeys)
		for k := range rotKeys {
			r, err := d.Engine.Trigger(ctx, rotator.TriggerRequest{Key: fmt.Sprintf("k%03d", k), Trigger: trigger, Actor: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			ids = append(ids, r.ID)
		}
		for {
			active, err := d.Store.ListRotations(ctx, rotator.RotationFilter{ActiveOnly: true, Limit: 1})
			if err != nil {
				b.Fatal(err)
			}
			if len(active) == 0 {
				return ids
			}
			time.Sleep(20 * time.Millisecond) // poll interval of a deadline-free wait: the op's time is the measure
		}
	}
	checkDone := func(ids []string) {
		for _, id := range ids {
			r, err := d.Store.GetRotation(ctx, id)
			if err != nil {
				b.Fatal(err)
			}
			if r.Phase != rotator.PhaseDone {
				b.Fatalf("rotation %s of %s ended %s: %s", id, r.Key, r.Phase, r.Outcome)
			}
		}
	}
	checkDone(rotateAll(rotator.TriggerBootstrap))
	base, since := rotErrors(b, d), e.mark(b)
	ops := 0
	for b.Loop() {
		ids := rotateAll(rotator.TriggerManual)
		ops++
		b.StopTimer()
		checkDone(ids)
		b.StartTimer()
	}
	elapsed := b.Elapsed()
	e.retries.Store(int64(rotErrors(b, d) - base))
	e.report(b, "rekey", ops, since, elapsed)
	logPhases(b, d)
	b.ReportMetric(rotWorkers, "concurrency")
	// The target: within 1.3x of the concurrent bare calls.
	for _, other := range []string{"bare-concurrent", "bare-min-concurrent", "sinks-concurrent"} {
		if w := e.wall[other]; w > 0 {
			b.ReportMetric(float64(e.wall["rekey"])/float64(w), "x-"+other)
		}
	}
}

// rotErrors is the engine's count of failed (retried) steps.
func rotErrors(b *testing.B, d *app.Daemon) float64 {
	mfs, err := d.Registry.Gather()
	if err != nil {
		b.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "rekey_rotation_errors_total" {
			for _, m := range mf.GetMetric() {
				total += counter(m)
			}
		}
	}
	return total
}

func counter(m *dto.Metric) float64 { return m.GetCounter().GetValue() }

// logPhases logs the mean time a rotation spent in each phase (bootstrap
// included), from the engine's own histogram: where rekey's time goes.
func logPhases(b *testing.B, d *app.Daemon) {
	mfs, err := d.Registry.Gather()
	if err != nil {
		b.Fatal(err)
	}
	var parts []string
	for _, mf := range mfs {
		if mf.GetName() != "rekey_rotation_phase_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			h := m.GetHistogram()
			if h.GetSampleCount() == 0 {
				continue
			}
			phase := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "phase" {
					phase = l.GetValue()
				}
			}
			parts = append(parts, fmt.Sprintf("%s %.0fms", phase, 1000*h.GetSampleSum()/float64(h.GetSampleCount())))
		}
	}
	b.Logf("mean time per phase: %s", strings.Join(parts, ", "))
}
