package bench

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	vapi "github.com/hashicorp/vault/api"

	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/sinks/awssm"
	"github.com/rekeyhq/rekey/sinks/vault"
)

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
// Manager version ids are tracked locally. With reads, it also makes the
// two reads of each store a crash-safe rotation cannot skip (docs/ADAPTERS.md:
// before the first write, ownership and the check-and-set base; before the
// revoke, that the new key is current), so that it makes exactly the sink
// calls of rekey's documented minimum; without, nothing is read back.
func (e *rotEnv) bare(prefix string, reads bool) rotCycler {
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
			check := func() error {
				if !reads {
					return nil
				}
				if _, err := e.kv.Get(ctx, n); err != nil {
					return err
				}
				return e.retry(serverError, func() error {
					_, err := e.sm.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String(n)})
					return err
				})
			}
			// The engine's order: stage everywhere, promote everywhere,
			// clean up everywhere.
			for _, step := range []func() error{
				check, // preflight
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
				check, // before the revoke
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
