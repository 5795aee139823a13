package awssm

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/sinks/sinktest"
	"github.com/rekeyhq/rekey/testing/testenv"
)

// TestConformance runs the sink suite against a real moto_server, in both
// value formats, reading what consumers see with the official SDK and
// VersionStage AWSCURRENT.
func TestConformance(t *testing.T) {
	m := startMoto(t)
	for _, format := range []string{FormatString, FormatJSON} {
		t.Run(format, func(t *testing.T) {
			sinktest.Run(t, harness(t, m, format))
		})
	}
}

// startMoto starts moto_server with the fake AWS environment, warmed up.
func startMoto(t *testing.T) *testenv.MotoServer {
	t.Helper()
	m := testenv.Moto(t)
	testenv.SetAWSEnv(t)
	sdkClient(t, m)
	return m
}

// sdkClient is an official SDK client for moto, independent of the sink,
// with the SDK's default retries (a test's own reads should not flake). It
// makes a first request with a long deadline: moto loads a service's
// backend on its first request, which can take seconds on a busy machine.
func sdkClient(t testing.TB, m *testenv.MotoServer) *sm.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	c := sm.NewFromConfig(cfg, func(o *sm.Options) { o.BaseEndpoint = aws.String(m.Endpoint) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.ListSecrets(ctx, &sm.ListSecretsInput{}); err != nil {
		t.Fatalf("moto secretsmanager warm-up: %v", err)
	}
	return c
}

func testConfig(m *testenv.MotoServer, format string) Config {
	cfg := DefaultConfig()
	cfg.Region = "us-east-1"
	cfg.Endpoint = m.Endpoint
	cfg.Format = format
	cfg.RecoveryWindowDays = 0
	cfg.Timeout = 10 * time.Second
	return cfg
}

// newTestSink builds a sink whose SDK client retries connection resets:
// moto (werkzeug) resets about one connection in several thousand right
// after answering, which the SDK classifies as retryable. In production the
// sink leaves every retry to the engine.
func newTestSink(t testing.TB, cfg Config) *Sink {
	t.Helper()
	s, err := newSink(cfg, nil, config.WithRetryMaxAttempts(3))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// readCurrent reads AWSCURRENT with the SDK; a missing or deleted secret is
// not found.
func readCurrent(ctx context.Context, c *sm.Client, id string) (string, bool, error) {
	out, err := c.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String(id), VersionStage: aws.String("AWSCURRENT")})
	switch errorCode(err) {
	case "":
	case "ResourceNotFoundException", "InvalidRequestException":
		return "", false, nil
	default:
		return "", false, err
	}
	return aws.ToString(out.SecretString), true, nil
}

func harness(t *testing.T, m *testenv.MotoServer, format string) sinktest.Harness {
	c := sdkClient(t, m)
	var n atomic.Int64
	field := func(raw string) (map[string]any, error) {
		var doc map[string]any
		if err := json.Unmarshal([]byte(raw), &doc); err != nil {
			return nil, fmt.Errorf("consumer cannot parse the secret as JSON: %v", err)
		}
		return doc, nil
	}
	h := sinktest.Harness{
		OutageTimeout: 2 * time.Second,
		NewSink: func(t *testing.T, opts sinktest.Options) rotator.Sink {
			cfg := testConfig(m, format)
			cfg.Adopt = opts.Adopt
			return newTestSink(t, cfg)
		},
		NewTarget: func(t *testing.T) rotator.Target {
			k := fmt.Sprintf("key-%d", n.Add(1))
			return rotator.Target{Key: k, Path: "rekey-test/" + format + "/" + k}
		},
		ReadCurrent: func(ctx context.Context, tgt rotator.Target) (string, bool, error) {
			raw, found, err := readCurrent(ctx, c, tgt.Path)
			if err != nil || !found || format == FormatString {
				return raw, found && raw != "", err
			}
			doc, err := field(raw)
			if err != nil {
				return "", false, err
			}
			v, _ := doc["api_key"].(string)
			return v, v != "", nil
		},
		CreateUnmanaged: func(ctx context.Context, tgt rotator.Target, value string) error {
			if format == FormatJSON {
				b, _ := json.Marshal(map[string]string{"api_key": value, "endpoint": "https://api.example"})
				value = string(b)
			}
			_, err := c.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String(tgt.Path), SecretString: aws.String(value)})
			return err
		},
		WriteMark: func(ctx context.Context, tgt rotator.Target) (string, error) {
			return writeMark(ctx, c, tgt.Path)
		},
		Outage: func(t *testing.T) func() {
			if err := m.Pause(); err != nil {
				t.Fatal(err)
			}
			waitUnresponsive(t, m.Endpoint+"/moto-api/")
			return func() {
				if err := m.Resume(); err != nil {
					t.Error(err)
				}
			}
		},
	}
	if format == FormatJSON {
		// A foreign writer can only leave rekey's key alone in JSON format;
		// in string format the whole value is the key.
		h.ForeignWrite = func(ctx context.Context, tgt rotator.Target, n int) error {
			return foreignWrite(ctx, c, tgt.Path, n)
		}
		h.ForeignRead = func(ctx context.Context, tgt rotator.Target) (int, error) {
			raw, _, err := readCurrent(ctx, c, tgt.Path)
			if err != nil {
				return 0, err
			}
			doc, err := field(raw)
			if err != nil {
				return 0, err
			}
			f, _ := doc["foreign"].(float64)
			return int(f), nil
		}
		h.Interleave = func(s rotator.Sink, fn func()) { s.(*Sink).hook.Store(&fn) }
	}
	return h
}

// writeMark lists every version with its labels, and the tags: anything a
// write changes.
func writeMark(ctx context.Context, c *sm.Client, id string) (string, error) {
	out, err := c.ListSecretVersionIds(ctx, &sm.ListSecretVersionIdsInput{SecretId: aws.String(id), IncludeDeprecated: aws.Bool(true)})
	switch errorCode(err) {
	case "":
	case "ResourceNotFoundException":
		return "absent", nil
	default:
		return "", err
	}
	var parts []string
	for _, v := range out.Versions {
		stages := slices.Clone(v.VersionStages)
		slices.Sort(stages)
		parts = append(parts, aws.ToString(v.VersionId)+"="+strings.Join(stages, "+"))
	}
	d, err := c.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String(id)})
	if err != nil {
		return "", err
	}
	for _, tag := range d.Tags {
		parts = append(parts, "tag:"+aws.ToString(tag.Key)+"="+aws.ToString(tag.Value))
	}
	slices.Sort(parts)
	return strings.Join(parts, " "), nil
}

// foreignWrite is another writer: it reads AWSCURRENT, changes a field
// rekey does not own, puts the result as a new version and moves AWSCURRENT
// onto it. (A plain PutSecretValue would do on AWS, but moto 5.2.1 then
// leaves AWSCURRENT on two versions when an UpdateSecretVersionStage moved
// it before: it tracks the current version separately from the labels.)
func foreignWrite(ctx context.Context, c *sm.Client, id string, n int) error {
	cur, err := c.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String(id), VersionStage: aws.String("AWSCURRENT")})
	if err != nil {
		return err
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(aws.ToString(cur.SecretString)), &doc); err != nil {
		return err
	}
	doc["foreign"] = n
	b, _ := json.Marshal(doc)
	put, err := c.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String(id), SecretString: aws.String(string(b)), VersionStages: []string{"FOREIGN"}})
	if err != nil {
		return err
	}
	_, err = c.UpdateSecretVersionStage(ctx, &sm.UpdateSecretVersionStageInput{
		SecretId: aws.String(id), VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: put.VersionId, RemoveFromVersionId: cur.VersionId,
	})
	if err != nil {
		return err
	}
	_, err = c.UpdateSecretVersionStage(ctx, &sm.UpdateSecretVersionStageInput{
		SecretId: aws.String(id), VersionStage: aws.String("FOREIGN"), RemoveFromVersionId: put.VersionId,
	})
	return err
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

// labels returns version id → sorted labels, without deprecated versions.
func labels(t *testing.T, c *sm.Client, id string) map[string]string {
	t.Helper()
	d, err := c.DescribeSecret(context.Background(), &sm.DescribeSecretInput{SecretId: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for v, st := range d.VersionIdsToStages {
		if len(st) > 0 {
			st = slices.Clone(st)
			slices.Sort(st)
			out[v] = strings.Join(st, "+")
		}
	}
	return out
}
