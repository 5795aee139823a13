package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	vapi "github.com/hashicorp/vault/api"
	dto "github.com/prometheus/client_model/go"

	"github.com/rekeyhq/rekey/app"
	"github.com/rekeyhq/rekey/config"
	"github.com/rekeyhq/rekey/internal/testenv"
	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/sinks/awssm"
	"github.com/rekeyhq/rekey/sinks/vault"
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
// read back), one key at a time and from a pool of rotWorkers.
//
//	go test -run '^$' -bench Rotate200VaultAWS -benchtime 2x ./bench/
//
// One op rotates all 200 keys once. Metrics: rotations/s, ms/200-keys (the
// op's wall time), sm-req/rotation (requests moto answered, from its log),
// client-cpu-ms/rotation (this process: rekey's engine, store and issuer,
// or the plain program), retries/op (moto's Secrets Manager backend is not
// thread-safe and may answer 500 under concurrent requests; every mode
// retries as the engine would), and for rekey its wall-time ratio to the
// concurrent plain modes (x-bare-concurrent, x-sinks-concurrent) and the
// mean time its rotations spent in each phase (logged; awaiting_approval
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
		{"bare-sequential", func(b *testing.B, p string) { e.runPlain(b, e.bare(p), 1) }},
		{"bare-concurrent", func(b *testing.B, p string) { e.runPlain(b, e.bare(p), rotWorkers) }},
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
	for _, other := range []string{"bare-concurrent", "sinks-concurrent"} {
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

// rotCycler delivers generation 1 of key k (setup) and rotates it to gen.
type rotCycler struct {
	setup func(ctx context.Context, k int) error
	cycle func(ctx context.Context, k, gen int) error
}

func rotValue(k, gen int) string { return fmt.Sprintf("ka_live_bench%03d_%08d", k, gen) }

// runPlain sets every key up with n workers, then per op rotates every key
// once with n workers.
func (e *rotEnv) runPlain(b *testing.B, c rotCycler, n int) {
	ctx := context.Background()
	if err := rotEach(rotWorkers, func(k int) error { return c.setup(ctx, k) }); err != nil {
		b.Fatal(err)
	}
	e.retries.Store(0)
	gen, ops, since := 1, 0, e.mark(b)
	for b.Loop() {
		gen++
		if err := rotEach(n, func(k int) error { return c.cycle(ctx, k, gen) }); err != nil {
			b.Fatal(err)
		}
		ops++
	}
	e.report(b, strings.TrimPrefix(b.Name(), "BenchmarkRotate200VaultAWS/"), ops, since, b.Elapsed())
}

// retry repeats a call that failed with a retryable error, with a short
// backoff, as the engine would.
func (e *rotEnv) retry(retryable func(error) bool, call func() error) error {
	for attempt := 1; ; attempt++ {
		err := call()
		if err == nil || attempt == 8 || !retryable(err) {
			return err
		}
		e.retries.Add(1)
		time.Sleep(time.Duration(attempt) * 20 * time.Millisecond) // backoff, not a wait for a condition
	}
}

// serverError: raw calls are retried on HTTP 5xx only.
func serverError(err error) bool {
	re, ok := errors.AsType[*awshttp.ResponseError](err)
	return ok && re.HTTPStatusCode() >= 500
}

// bare rotates with the raw clients: the Vault version and the Secrets
// Manager version ids are tracked locally, nothing is read back.
func (e *rotEnv) bare(prefix string) rotCycler {
	versions := make([]int, rotKeys)
	current := make([]string, rotKeys)
	id := func(k, gen int) string { return fmt.Sprintf("00000000-0000-4000-8000-%06d%06d", k, gen) }
	return rotCycler{
		setup: func(ctx context.Context, k int) error {
			n := rotName(prefix, k)
			if _, err := e.kv.Put(ctx, n, map[string]any{"api_key": rotValue(k, 1)}, vapi.WithCheckAndSet(0)); err != nil {
				return err
			}
			versions[k], current[k] = 1, id(k, 1)
			return e.retry(serverError, func() error {
				_, err := e.sm.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String(n), SecretString: aws.String(rotValue(k, 1)), ClientRequestToken: aws.String(current[k])})
				return err
			})
		},
		cycle: func(ctx context.Context, k, gen int) error {
			n := rotName(prefix, k)
			oldV, newV, next := rotValue(k, gen-1), rotValue(k, gen), id(k, gen)
			put := func(data map[string]any) error {
				_, err := e.kv.Put(ctx, n, data, vapi.WithCheckAndSet(versions[k]))
				versions[k]++
				return err
			}
			label := func(in *sm.UpdateSecretVersionStageInput) error {
				return e.retry(serverError, func() error { _, err := e.sm.UpdateSecretVersionStage(ctx, in); return err })
			}
			// The engine's order: stage everywhere, promote everywhere,
			// clean up everywhere.
			for _, step := range []func() error{
				func() error { return put(map[string]any{"api_key": oldV, "api_key_pending": newV}) },
				func() error {
					return e.retry(serverError, func() error {
						_, err := e.sm.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String(n), SecretString: aws.String(newV),
							ClientRequestToken: aws.String(next), VersionStages: []string{"AWSPENDING"}})
						return err
					})
				},
				func() error { return put(map[string]any{"api_key": newV, "api_key_previous": oldV}) },
				func() error {
					return label(&sm.UpdateSecretVersionStageInput{SecretId: aws.String(n), VersionStage: aws.String("AWSCURRENT"),
						MoveToVersionId: aws.String(next), RemoveFromVersionId: aws.String(current[k])})
				},
				func() error {
					return label(&sm.UpdateSecretVersionStageInput{SecretId: aws.String(n), VersionStage: aws.String("AWSPENDING"), RemoveFromVersionId: aws.String(next)})
				},
				func() error { return put(map[string]any{"api_key": newV}) },
				func() error {
					return label(&sm.UpdateSecretVersionStageInput{SecretId: aws.String(n), VersionStage: aws.String("AWSPREVIOUS"), RemoveFromVersionId: aws.String(current[k])})
				},
			} {
				if err := step(); err != nil {
					return err
				}
			}
			current[k] = next
			return nil
		},
	}
}

// viaSinks rotates through the vault and awssm sink types, each step on
// both sinks before the next, as the engine does — without the engine's
// issuer, store, audit trail and checks.
func (e *rotEnv) viaSinks(b *testing.B, prefix string) rotCycler {
	vcfg := vault.DefaultConfig()
	vcfg.Address, vcfg.Auth.TokenFile = e.vault.Addr, filepath.Join(e.tokenDir, "vault-token")
	vs, err := vault.New(vcfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = vs.Close() })
	acfg := awssm.DefaultConfig()
	acfg.Region, acfg.Endpoint = "us-east-1", e.moto.Endpoint
	as, err := awssm.New(acfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	sinks := []rotator.Sink{vs, as}
	delivery := func(k, gen int) rotator.Delivery {
		d := rotator.Delivery{RotationID: fmt.Sprintf("bench-%s-%d-%d", prefix, k, gen), Generation: gen,
			Fingerprint: rotator.Fingerprint(rotValue(k, gen)), Secret: rotator.NewSecret(rotValue(k, gen)), OldGeneration: gen - 1}
		if gen > 1 {
			d.OldFingerprint = rotator.Fingerprint(rotValue(k, gen-1))
		}
		return d
	}
	type call func(rotator.Sink) func(context.Context, rotator.Target, rotator.Delivery) error
	run := func(ctx context.Context, k, gen int, steps ...call) error {
		t, d := rotator.Target{Key: fmt.Sprintf("k%03d", k), Path: rotName(prefix, k)}, delivery(k, gen)
		for _, step := range steps {
			for _, s := range sinks {
				if err := e.retry(func(err error) bool { return !rotator.IsPermanent(err) }, func() error { return step(s)(ctx, t, d) }); err != nil {
					return err
				}
			}
		}
		return nil
	}
	stage := func(s rotator.Sink) func(context.Context, rotator.Target, rotator.Delivery) error { return s.Stage }
	promote := func(s rotator.Sink) func(context.Context, rotator.Target, rotator.Delivery) error { return s.Promote }
	cleanup := func(s rotator.Sink) func(context.Context, rotator.Target, rotator.Delivery) error { return s.Cleanup }
	return rotCycler{
		setup: func(ctx context.Context, k int) error { return run(ctx, k, 1, stage) },
		cycle: func(ctx context.Context, k, gen int) error { return run(ctx, k, gen, stage, promote, cleanup) },
	}
}

// rotEach runs fn for every key with n workers and returns the first error.
func rotEach(n int, fn func(k int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	next := make(chan int)
	for range n {
		wg.Go(func() {
			for k := range next {
				if err := fn(k); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	for k := range rotKeys {
		next <- k
	}
	close(next)
	wg.Wait()
	return first
}
