// Package bench measures one rotation cycle (stage, promote, cleanup) of
// 200 keys delivered to Vault KV v2, to Secrets Manager (moto), and to both:
// bare SDK calls one key after the other, the same bare calls from a pool of
// workers, and the vault and awssm sinks (sequentially and from the pool).
// The bare calls are the floor: they know every version id and skip every
// read and check the sinks make to stay idempotent and safe under
// concurrent writers.
//
//	go test -run '^$' -bench . -benchtime 3x ./sinks/sinktest/bench/
//
// moto's Secrets Manager backend is not thread-safe: under concurrent
// requests some answer HTTP 500 ("dictionary changed size during
// iteration"). Every mode retries a retryable failure as the engine would
// and reports the count as retries/op.
package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	vapi "github.com/hashicorp/vault/api"

	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/sinks/awssm"
	"github.com/rekeyhq/rekey/sinks/vault"
	"github.com/rekeyhq/rekey/testing/testenv"
)

const (
	keys    = 200
	workers = 16
)

// backends are the two servers and official clients shared by the
// sub-benchmarks.
type backends struct {
	kv      *vapi.KVv2
	sm      *sm.Client
	vault   *vault.Sink
	awssm   *awssm.Sink
	moto    *testenv.MotoServer
	retries atomic.Int64
}

func start(b *testing.B) *backends {
	b.Helper()
	v, m := testenv.Vault(b), testenv.Moto(b)
	testenv.SetAWSEnv(b)
	conf := vapi.DefaultConfig()
	conf.Address, conf.MaxRetries = v.Addr, 0
	vc, err := vapi.NewClient(conf)
	if err != nil {
		b.Fatal(err)
	}
	vc.SetToken(v.Token)
	acfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"))
	if err != nil {
		b.Fatal(err)
	}
	tok := b.TempDir() + "/token"
	if err := os.WriteFile(tok, []byte(v.Token), 0o600); err != nil {
		b.Fatal(err)
	}
	vcfg := vault.DefaultConfig()
	vcfg.Address, vcfg.Auth.TokenFile = v.Addr, tok
	vs, err := vault.New(vcfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = vs.Close() })
	scfg := awssm.DefaultConfig()
	scfg.Region, scfg.Endpoint = "us-east-1", m.Endpoint
	as, err := awssm.New(scfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	return &backends{
		kv:    vc.KVv2("secret"),
		sm:    sm.NewFromConfig(acfg, func(o *sm.Options) { o.BaseEndpoint = aws.String(m.Endpoint) }),
		vault: vs, awssm: as, moto: m,
	}
}

// cycler delivers generation 1 of a key (setup) and rotates it to gen.
type cycler struct {
	setup func(ctx context.Context, k int) error
	cycle func(ctx context.Context, k, gen int) error
}

func value(k, gen int) string { return fmt.Sprintf("ka_live_bench_%03d_%06d", k, gen) }

// retry repeats a call that failed with a retryable error, as the engine
// would.
func (be *backends) retry(retryable func(error) bool, call func() error) error {
	for attempt := 1; ; attempt++ {
		err := call()
		if err == nil || attempt == 5 || !retryable(err) {
			return err
		}
		be.retries.Add(1)
		time.Sleep(time.Duration(attempt) * 20 * time.Millisecond) // backoff, not a wait for a condition
	}
}

// serverError: bare SDK calls (whose client already retries connection
// resets) are retried on HTTP 5xx too.
func serverError(err error) bool {
	re, ok := errors.AsType[*awshttp.ResponseError](err)
	return ok && re.HTTPStatusCode() >= 500
}

// notPermanent: sink calls are retried unless the sink says not to.
func notPermanent(err error) bool { return !rotator.IsPermanent(err) }

// bareVault: three check-and-set writes per cycle, the version tracked
// locally.
func (be *backends) bareVault(prefix string) cycler {
	versions := make([]int, keys)
	path := func(k int) string { return fmt.Sprintf("%s/%d", prefix, k) }
	return cycler{
		setup: func(ctx context.Context, k int) error {
			_, err := be.kv.Put(ctx, path(k), map[string]any{"api_key": value(k, 1)}, vapi.WithCheckAndSet(0))
			versions[k] = 1
			return err
		},
		cycle: func(ctx context.Context, k, gen int) error {
			oldV, newV := value(k, gen-1), value(k, gen)
			for _, data := range []map[string]any{
				{"api_key": oldV, "api_key_pending": newV},
				{"api_key": newV, "api_key_previous": oldV},
				{"api_key": newV},
			} {
				if _, err := be.kv.Put(ctx, path(k), data, vapi.WithCheckAndSet(versions[k])); err != nil {
					return err
				}
				versions[k]++
			}
			return nil
		},
	}
}

// bareSM: a put with AWSPENDING, AWSCURRENT moved, AWSPENDING and
// AWSPREVIOUS removed; the version ids tracked locally.
func (be *backends) bareSM(prefix string) cycler {
	current := make([]string, keys)
	path := func(k int) *string { return aws.String(fmt.Sprintf("%s/%d", prefix, k)) }
	id := func(k, gen int) string { return fmt.Sprintf("00000000-0000-4000-8000-%06d%06d", k, gen) }
	return cycler{
		setup: func(ctx context.Context, k int) error {
			current[k] = id(k, 1)
			return be.retry(serverError, func() error {
				_, err := be.sm.CreateSecret(ctx, &sm.CreateSecretInput{Name: path(k), SecretString: aws.String(value(k, 1)), ClientRequestToken: aws.String(current[k])})
				return err
			})
		},
		cycle: func(ctx context.Context, k, gen int) error {
			next := id(k, gen)
			if err := be.retry(serverError, func() error {
				_, err := be.sm.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: path(k), SecretString: aws.String(value(k, gen)),
					ClientRequestToken: aws.String(next), VersionStages: []string{"AWSPENDING"}})
				return err
			}); err != nil {
				return err
			}
			for _, in := range []*sm.UpdateSecretVersionStageInput{
				{SecretId: path(k), VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: aws.String(next), RemoveFromVersionId: aws.String(current[k])},
				{SecretId: path(k), VersionStage: aws.String("AWSPENDING"), RemoveFromVersionId: aws.String(next)},
				{SecretId: path(k), VersionStage: aws.String("AWSPREVIOUS"), RemoveFromVersionId: aws.String(current[k])},
			} {
				if err := be.retry(serverError, func() error { _, err := be.sm.UpdateSecretVersionStage(ctx, in); return err }); err != nil {
					return err
				}
			}
			current[k] = next
			return nil
		},
	}
}

// viaSinks drives the sinks as the engine does: each step on every sink
// before the next step.
func (be *backends) viaSinks(prefix string, sinks ...rotator.Sink) cycler {
	target := func(k int) rotator.Target {
		return rotator.Target{Key: fmt.Sprint(k), Path: fmt.Sprintf("%s/%d", prefix, k)}
	}
	delivery := func(k, gen int) rotator.Delivery {
		d := rotator.Delivery{RotationID: fmt.Sprintf("bench-%d-%d", k, gen), Generation: gen,
			Fingerprint: rotator.Fingerprint(value(k, gen)), Secret: rotator.NewSecret(value(k, gen)), OldGeneration: gen - 1}
		if gen > 1 {
			d.OldFingerprint = rotator.Fingerprint(value(k, gen-1))
		}
		return d
	}
	run := func(ctx context.Context, k int, d rotator.Delivery, steps ...func(rotator.Sink) func(context.Context, rotator.Target, rotator.Delivery) error) error {
		for _, step := range steps {
			for _, s := range sinks {
				if err := be.retry(notPermanent, func() error { return step(s)(ctx, target(k), d) }); err != nil {
					return err
				}
			}
		}
		return nil
	}
	stage := func(s rotator.Sink) func(context.Context, rotator.Target, rotator.Delivery) error { return s.Stage }
	promote := func(s rotator.Sink) func(context.Context, rotator.Target, rotator.Delivery) error { return s.Promote }
	cleanup := func(s rotator.Sink) func(context.Context, rotator.Target, rotator.Delivery) error { return s.Cleanup }
	return cycler{
		setup: func(ctx context.Context, k int) error { return run(ctx, k, delivery(k, 1), stage) },
		cycle: func(ctx context.Context, k, gen int) error {
			return run(ctx, k, delivery(k, gen), stage, promote, cleanup)
		},
	}
}

// both runs the Vault cycle, then the Secrets Manager one, for each key.
func both(a, b cycler) cycler {
	return cycler{
		setup: func(ctx context.Context, k int) error {
			if err := a.setup(ctx, k); err != nil {
				return err
			}
			return b.setup(ctx, k)
		},
		cycle: func(ctx context.Context, k, gen int) error {
			if err := a.cycle(ctx, k, gen); err != nil {
				return err
			}
			return b.cycle(ctx, k, gen)
		},
	}
}

// each runs fn for every key, with n workers.
func each(n int, fn func(k int) error) error {
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
	for k := range keys {
		next <- k
	}
	close(next)
	wg.Wait()
	return first
}

func BenchmarkRotate200Keys(b *testing.B) {
	be := start(b)
	ctx := context.Background()
	modes := []struct {
		name string
		n    int
		make func(backend, prefix string) cycler
	}{
		{"bare-sequential", 1, be.bare},
		{"bare-concurrent", workers, be.bare},
		{"sinks-sequential", 1, be.sinks},
		{"sinks-concurrent", workers, be.sinks},
	}
	for _, backend := range []string{"vault+awssm", "vault", "awssm"} {
		for _, mode := range modes {
			b.Run(backend+"/"+mode.name, func(b *testing.B) {
				// moto looks secrets up by scanning them all: start every
				// sub-benchmark from an empty server so the order does not
				// skew the figures.
				if err := be.moto.Reset(); err != nil {
					b.Fatal(err)
				}
				r := mode.make(backend, backend+"-"+mode.name)
				if err := each(workers, func(k int) error { return r.setup(ctx, k) }); err != nil {
					b.Fatal(err)
				}
				be.retries.Store(0)
				gen := 1
				for b.Loop() {
					gen++
					if err := each(mode.n, func(k int) error { return r.cycle(ctx, k, gen) }); err != nil {
						b.Fatal(err)
					}
				}
				cycles := gen - 1
				per := b.Elapsed() / time.Duration(cycles)
				b.ReportMetric(float64(per.Microseconds())/1000/keys, "ms/key")
				b.ReportMetric(keys/per.Seconds(), "keys/s")
				b.ReportMetric(float64(be.retries.Load())/float64(cycles), "retries/op")
			})
		}
	}
}

func (be *backends) bare(backend, prefix string) cycler {
	switch backend {
	case "vault":
		return be.bareVault(prefix)
	case "awssm":
		return be.bareSM(prefix)
	}
	return both(be.bareVault(prefix), be.bareSM(prefix))
}

func (be *backends) sinks(backend, prefix string) cycler {
	switch backend {
	case "vault":
		return be.viaSinks(prefix, be.vault)
	case "awssm":
		return be.viaSinks(prefix, be.awssm)
	}
	return be.viaSinks(prefix, be.vault, be.awssm)
}
