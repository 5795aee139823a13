package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/sinks/sinktest"
	"github.com/rekeyhq/rekey/testing/testenv"
)

// TestConformance runs the sink suite against a real Vault 1.13 dev server,
// reading what consumers see with the official client.
func TestConformance(t *testing.T) {
	v := testenv.Vault(t)
	sinktest.Run(t, harness(t, v))
}

// rootClient is an official API client with the root token, independent of
// the sink.
func rootClient(t testing.TB, v *testenv.VaultServer) *api.Client {
	t.Helper()
	conf := api.DefaultConfig()
	conf.Address = v.Addr
	conf.MaxRetries = 0
	conf.Timeout = 10 * time.Second
	c, err := api.NewClient(conf)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(v.Token)
	return c
}

// tokenFile writes a token to a file for the token_file setting.
func tokenFile(t testing.TB, token string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// testConfig is a token-authenticated configuration for v.
func testConfig(t testing.TB, v *testenv.VaultServer) Config {
	cfg := DefaultConfig()
	cfg.Address = v.Addr
	cfg.Auth.TokenFile = tokenFile(t, v.Token)
	cfg.Timeout = 10 * time.Second
	return cfg
}

func newSink(t testing.TB, cfg Config) *Sink {
	t.Helper()
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func harness(t *testing.T, v *testenv.VaultServer) sinktest.Harness {
	root := rootClient(t, v)
	kv := root.KVv2("secret")
	var n atomic.Int64
	get := func(ctx context.Context, path string) (*api.KVSecret, error) {
		sec, err := kv.Get(ctx, path)
		if errors.Is(err, api.ErrSecretNotFound) {
			return nil, nil
		}
		return sec, err
	}
	return sinktest.Harness{
		OutageTimeout: 2 * time.Second,
		NewSink: func(t *testing.T, opts sinktest.Options) rotator.Sink {
			cfg := testConfig(t, v)
			cfg.Adopt = opts.Adopt
			return newSink(t, cfg)
		},
		NewTarget: func(t *testing.T) rotator.Target {
			k := fmt.Sprintf("key-%d", n.Add(1))
			return rotator.Target{Key: k, Path: "rekey-test/" + k}
		},
		ReadCurrent: func(ctx context.Context, tgt rotator.Target) (string, bool, error) {
			sec, err := get(ctx, tgt.Path)
			if err != nil || sec == nil || sec.Data == nil {
				return "", false, err
			}
			s, _ := sec.Data["api_key"].(string)
			return s, s != "", nil
		},
		CreateUnmanaged: func(ctx context.Context, tgt rotator.Target, value string) error {
			_, err := kv.Put(ctx, tgt.Path, map[string]any{"api_key": value, "endpoint": "https://api.example"})
			return err
		},
		WriteMark: func(ctx context.Context, tgt rotator.Target) (string, error) {
			md, err := kv.GetMetadata(ctx, tgt.Path)
			if errors.Is(err, api.ErrSecretNotFound) {
				return "absent", nil
			}
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("version=%d updated=%s", md.CurrentVersion, md.UpdatedTime.Format(time.RFC3339Nano)), nil
		},
		Outage: func(t *testing.T) func() {
			if err := v.Pause(); err != nil {
				t.Fatal(err)
			}
			waitUnresponsive(t, v.Addr+"/v1/sys/health")
			return func() {
				if err := v.Resume(); err != nil {
					t.Error(err)
				}
			}
		},
		ForeignWrite: func(ctx context.Context, tgt rotator.Target, n int) error {
			return foreignWrite(ctx, kv, tgt.Path, n)
		},
		ForeignRead: func(ctx context.Context, tgt rotator.Target) (int, error) {
			sec, err := get(ctx, tgt.Path)
			if err != nil || sec == nil {
				return 0, err
			}
			return toInt(sec.Data["foreign"]), nil
		},
		Interleave: func(s rotator.Sink, fn func()) { s.(*Sink).hook.Store(&fn) },
	}
}

// waitUnresponsive polls url until it stops answering: SIGSTOP is
// delivered asynchronously, so a request sent right after Pause may still
// be served.
func waitUnresponsive(t *testing.T, url string) {
	t.Helper()
	client := &http.Client{Timeout: 200 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
		if err != nil {
			return
		}
		_ = resp.Body.Close()
	}
	t.Fatalf("%s still answers after the server was paused", url)
}

// foreignWrite is another well-behaved writer: a check-and-set
// read-modify-write of a field rekey does not own.
func foreignWrite(ctx context.Context, kv *api.KVv2, path string, n int) error {
	for range 20 {
		sec, err := kv.Get(ctx, path)
		if err != nil {
			return err
		}
		data := sec.Data
		if data == nil {
			data = map[string]any{}
		}
		data["foreign"] = n
		_, err = kv.Put(ctx, path, data, api.WithCheckAndSet(sec.VersionMetadata.Version))
		if err == nil || !isCASMismatch(err) {
			return err
		}
	}
	return errors.New("foreign writer: check-and-set kept failing")
}

func delivery(gen int, value, old string) rotator.Delivery {
	d := rotator.Delivery{
		RotationID: fmt.Sprintf("rot-%d", gen), Generation: gen,
		Fingerprint: rotator.Fingerprint(value), Secret: rotator.NewSecret(value),
		OldGeneration: gen - 1,
	}
	if old != "" {
		d.OldFingerprint = rotator.Fingerprint(old)
	}
	return d
}

// rotate stages, promotes and cleans up d.
func rotate(ctx context.Context, s rotator.Sink, tgt rotator.Target, d rotator.Delivery) error {
	if err := s.Stage(ctx, tgt, d); err != nil {
		return err
	}
	if err := s.Promote(ctx, tgt, d); err != nil {
		return err
	}
	return s.Cleanup(ctx, tgt, d)
}

// TestSecretLayout checks what a consumer of the KV secret sees at each
// step, field by field, and that other fields and custom metadata survive.
func TestSecretLayout(t *testing.T) {
	v := testenv.Vault(t)
	ctx := context.Background()
	root := rootClient(t, v)
	kv := root.KVv2("secret")
	if _, err := kv.Put(ctx, "team/billing", map[string]any{"token": "ka_live_old", "endpoint": "https://api.example"}); err != nil {
		t.Fatal(err)
	}
	maxVersions := 20
	if err := kv.PatchMetadata(ctx, "team/billing", api.KVMetadataPatchInput{
		CustomMetadata: map[string]any{"owner": "team-a"}, MaxVersions: &maxVersions,
	}); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, v)
	cfg.Adopt = true
	s := newSink(t, cfg)
	// The binding names the secret by its API path and renames the field.
	tgt := rotator.Target{Key: "billing", Path: "secret/data/team/billing", Params: map[string]string{"field": "token"}}
	d := delivery(2, "ka_live_new", "ka_live_old")
	want := func(step string, fields map[string]any) {
		t.Helper()
		sec, err := kv.Get(ctx, "team/billing")
		if err != nil {
			t.Fatal(err)
		}
		got, _ := json.Marshal(sec.Data)
		exp, _ := json.Marshal(fields)
		if string(got) != string(exp) {
			t.Fatalf("after %s: data %s, want %s", step, got, exp)
		}
	}
	if err := s.Stage(ctx, tgt, d); err != nil {
		t.Fatal(err)
	}
	want("stage", map[string]any{"endpoint": "https://api.example", "token": "ka_live_old", "token_pending": "ka_live_new"})
	if err := s.Promote(ctx, tgt, d); err != nil {
		t.Fatal(err)
	}
	want("promote", map[string]any{"endpoint": "https://api.example", "token": "ka_live_new", "token_previous": "ka_live_old"})
	if err := s.Cleanup(ctx, tgt, d); err != nil {
		t.Fatal(err)
	}
	want("cleanup", map[string]any{"endpoint": "https://api.example", "token": "ka_live_new"})

	md, err := kv.GetMetadata(ctx, "team/billing")
	if err != nil {
		t.Fatal(err)
	}
	if md.CustomMetadata["owner"] != "team-a" || md.CustomMetadata[markerKey] != markerValue || md.MaxVersions != 20 {
		t.Fatalf("metadata after adoption: custom %v, max_versions %d", md.CustomMetadata, md.MaxVersions)
	}

	// Remove keeps what is not rekey's.
	if err := s.Remove(ctx, tgt); err != nil {
		t.Fatal(err)
	}
	want("remove", map[string]any{"endpoint": "https://api.example"})
}

// TestFirstDeliveryInterruptedBeforeMarking: a crash between the first
// write and the custom-metadata marker leaves an unmarked secret holding
// our value; the replayed Stage recognises it (only rekey knows the value)
// and marks it, while a different value is still refused.
func TestFirstDeliveryInterruptedBeforeMarking(t *testing.T) {
	v := testenv.Vault(t)
	ctx := context.Background()
	kv := rootClient(t, v).KVv2("secret")
	s := newSink(t, testConfig(t, v))
	tgt := rotator.Target{Key: "k", Path: "crash/k"}
	if _, err := kv.Put(ctx, "crash/k", map[string]any{"api_key": "ka_live_first"}, api.WithCheckAndSet(0)); err != nil {
		t.Fatal(err)
	}
	err := s.Stage(ctx, tgt, delivery(1, "ka_live_other", ""))
	if !errors.Is(err, rotator.ErrNotManaged) {
		t.Fatalf("Stage of another value into an unmarked secret = %v, want not managed", err)
	}
	if err := s.Stage(ctx, tgt, delivery(1, "ka_live_first", "")); err != nil {
		t.Fatal(err)
	}
	st, err := s.Inspect(ctx, tgt)
	if err != nil || !st.Managed || st.Current != rotator.Fingerprint("ka_live_first") {
		t.Fatalf("Inspect = %+v, %v; want managed with the first value", st, err)
	}
}

// TestConflictExhausted: a secret that changes under every attempt ends in
// a retryable conflict, never a blind write.
func TestConflictExhausted(t *testing.T) {
	v := testenv.Vault(t)
	ctx := context.Background()
	kv := rootClient(t, v).KVv2("secret")
	s := newSink(t, testConfig(t, v))
	tgt := rotator.Target{Key: "k", Path: "busy/k"}
	if err := s.Stage(ctx, tgt, delivery(1, "v1", "")); err != nil {
		t.Fatal(err)
	}
	n := 0
	var arm func()
	arm = func() {
		fn := func() {
			n++
			if err := foreignWrite(ctx, kv, "busy/k", n); err != nil {
				t.Error(err)
			}
			arm()
		}
		s.hook.Store(&fn)
	}
	arm()
	err := s.Stage(ctx, tgt, delivery(2, "v2", "v1"))
	s.hook.Store(nil)
	if !errors.Is(err, rotator.ErrConflict) || rotator.IsPermanent(err) || rotator.ReasonOf(err) != rotator.ReasonConflict {
		t.Fatalf("Stage = %v, want a retryable conflict", err)
	}
	if n != maxAttempts {
		t.Fatalf("attempts = %d, want %d", n, maxAttempts)
	}
	st, _ := s.Inspect(ctx, tgt)
	if st.Pending != "" {
		t.Fatal("a lost check-and-set still wrote the pending value")
	}
}

// TestConcurrentForeignWriterStress: a foreign check-and-set writer
// hammers the secret while rotations run; neither side loses a write.
func TestConcurrentForeignWriterStress(t *testing.T) {
	v := testenv.Vault(t)
	ctx := context.Background()
	kv := rootClient(t, v).KVv2("secret")
	s := newSink(t, testConfig(t, v))
	tgt := rotator.Target{Key: "k", Path: "stress/k"}
	if err := s.Stage(ctx, tgt, delivery(1, "g1", "")); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan error, 1)
	var last atomic.Int64
	go func() {
		for i := 1; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if err := foreignWrite(ctx, kv, "stress/k", i); err != nil {
				done <- err
				return
			}
			last.Store(int64(i))
		}
	}()
	old := "g1"
	for g := 2; g <= 8; g++ {
		val := fmt.Sprintf("g%d", g)
		// The engine retries a conflict (with backoff, without bound); a
		// loaded machine can lose several races in a row to the writer.
		err := rotate(ctx, s, tgt, delivery(g, val, old))
		for try := 0; errors.Is(err, rotator.ErrConflict) && try < 50; try++ {
			time.Sleep(time.Duration(try) * time.Millisecond)
			err = rotate(ctx, s, tgt, delivery(g, val, old))
		}
		if err != nil {
			t.Fatal(err)
		}
		old = val
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	sec, err := kv.Get(ctx, "stress/k")
	if err != nil {
		t.Fatal(err)
	}
	if got := toInt(sec.Data["foreign"]); got != int(last.Load()) || sec.Data["api_key"] != "g8" {
		t.Fatalf("final data: foreign=%d (want %d), api_key fingerprint %s", got, last.Load(), rotator.ShortFingerprint(rotator.Fingerprint(fmt.Sprint(sec.Data["api_key"]))))
	}
	t.Logf("%d foreign writes interleaved with 7 rotations", last.Load())
}
