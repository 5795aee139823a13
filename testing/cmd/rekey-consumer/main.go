// Command rekey-consumer is a stand-in for a service that calls a
// Kubeadapt-style API with a key rekey delivers (testing/consumer),
// run as its own process by the end-to-end tests. It calls GET /v1/clusters
// with "Authorization: Bearer <key>" continuously, re-reads the key from
// its source every -reload (0: reads it once and never again, like a
// forgotten consumer), counts the answers by status and by key, and writes
// its report as JSON — to -report every -report-every and on SIGTERM or
// SIGINT, or to stdout on exit when -report is not set. Keys appear in the
// report and the logs only as SHA-256 fingerprints.
//
//	rekey-consumer -url http://127.0.0.1:8089 -file /var/lib/rekey/secrets/api.json -reload 200ms -report r.json
//	VAULT_ADDR=… VAULT_TOKEN=… rekey-consumer -url … -vault-path api          # KV v2 secret/api, field api_key
//	AWS_ACCESS_KEY_ID=… rekey-consumer -url … -awssm-secret api -awssm-endpoint http://127.0.0.1:5000
//	KEY=… rekey-consumer -url … -key-env KEY                                  # a fixed key
//
// With -attest-url the consumer also reports to rekey, after every read,
// the fingerprint of the key it holds (signed with the secret in
// -attest-secret-env), as a consumer wired for attestation would.
//
// Exactly one source: -file (the file sink's JSON document, current.value),
// -vault-path, -awssm-secret or -key-env. The exit status is 0 when it was
// stopped by a signal, whatever the answers were: the report says.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/rekeyhq/rekey/testing/consumer"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "rekey-consumer:", err)
		os.Exit(1)
	}
}

type options struct {
	url, path                             string
	file                                  string
	vaultPath, vaultMount, vaultField     string
	awsSecret, awsEndpoint, awsField      string
	keyEnv                                string
	reload, interval, timeout, reportEach time.Duration
	report                                string
	attestURL, attestSecretEnv            string
	attestKey, attestName                 string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("rekey-consumer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.url, "url", "", "API root, e.g. http://127.0.0.1:8089 (required)")
	fs.StringVar(&o.path, "path", "/v1/clusters", "data API path to call")
	fs.StringVar(&o.file, "file", "", "source: the file sink's JSON document (reads current.value)")
	fs.StringVar(&o.vaultPath, "vault-path", "", "source: KV v2 secret path in Vault ($VAULT_ADDR, $VAULT_TOKEN)")
	fs.StringVar(&o.vaultMount, "vault-mount", "secret", "KV v2 mount")
	fs.StringVar(&o.vaultField, "vault-field", "api_key", "field holding the key")
	fs.StringVar(&o.awsSecret, "awssm-secret", "", "source: Secrets Manager secret id, read at AWSCURRENT ($AWS_ACCESS_KEY_ID, $AWS_SECRET_ACCESS_KEY, $AWS_REGION)")
	fs.StringVar(&o.awsEndpoint, "awssm-endpoint", "", "Secrets Manager endpoint (e.g. moto)")
	fs.StringVar(&o.awsField, "awssm-field", "", "JSON field holding the key (default: the whole SecretString)")
	fs.StringVar(&o.keyEnv, "key-env", "", "source: a fixed key from this environment variable")
	fs.DurationVar(&o.reload, "reload", 200*time.Millisecond, "how often the key is read again; 0 reads it once")
	fs.DurationVar(&o.interval, "interval", 20*time.Millisecond, "pause between requests")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Second, "per-request timeout")
	fs.StringVar(&o.report, "report", "", "write the JSON report to this file (atomically), periodically and on exit; default stdout on exit")
	fs.DurationVar(&o.reportEach, "report-every", 250*time.Millisecond, "how often -report is rewritten")
	fs.StringVar(&o.attestURL, "attest-url", "", "report the key held, after every read, to this rekey attestation endpoint (…/v1/consumers/attest)")
	fs.StringVar(&o.attestSecretEnv, "attest-secret-env", "", "environment variable holding the attestation signing secret")
	fs.StringVar(&o.attestKey, "attest-key", "", "rekey's name of the key, for -attest-url")
	fs.StringVar(&o.attestName, "attest-name", "", "this consumer's name, for -attest-url")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.url == "" {
		return errors.New("-url is required")
	}
	reader, err := source(o, getenv)
	if err != nil {
		return err
	}
	var attest *consumer.Attest
	if o.attestURL != "" {
		secret := getenv(o.attestSecretEnv)
		if o.attestSecretEnv == "" || secret == "" || o.attestKey == "" || o.attestName == "" {
			return errors.New("-attest-url needs -attest-secret-env (set), -attest-key and -attest-name")
		}
		attest = &consumer.Attest{URL: o.attestURL, Secret: secret, Key: o.attestKey, Name: o.attestName}
	}
	c, err := consumer.New(consumer.Options{URL: o.url, Path: o.path, Reader: reader, Reload: o.reload, Interval: o.interval, Timeout: o.timeout, Attest: attest})
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil)).With("component", "rekey-consumer")
	log.Info("consumer started", "source", reader.String(), "url", o.url+o.path, "reload", o.reload.String())

	var wg sync.WaitGroup
	if o.report != "" {
		wg.Go(func() {
			tick := time.NewTicker(o.reportEach)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					if err := c.Report().WriteFile(o.report); err != nil {
						log.Warn("write report", "err", err)
					}
				}
			}
		})
	}
	err = c.Run(ctx)
	wg.Wait()
	rep := c.Report()
	log.Info("consumer stopped", "requests", rep.Requests, "served", rep.Served, "failures", rep.Failures, "by_status", rep.ByStatus, "keys", len(rep.Keys))
	if o.report != "" {
		if werr := rep.WriteFile(o.report); werr != nil {
			return errors.Join(err, werr)
		}
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return errors.Join(err, enc.Encode(rep))
}

// source builds the one Reader the flags name.
func source(o options, getenv func(string) string) (consumer.Reader, error) {
	var readers []consumer.Reader
	if o.file != "" {
		readers = append(readers, consumer.File(o.file))
	}
	if o.vaultPath != "" {
		addr, token := getenv("VAULT_ADDR"), getenv("VAULT_TOKEN")
		if addr == "" || token == "" {
			return nil, errors.New("-vault-path needs $VAULT_ADDR and $VAULT_TOKEN")
		}
		client, err := consumer.NewVaultClient(addr, token)
		if err != nil {
			return nil, fmt.Errorf("vault client: %w", err)
		}
		readers = append(readers, consumer.Vault(client, o.vaultMount, o.vaultPath, o.vaultField))
	}
	if o.awsSecret != "" {
		region := getenv("AWS_REGION")
		if region == "" {
			region = getenv("AWS_DEFAULT_REGION")
		}
		id, secret := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY")
		if region == "" || id == "" || secret == "" {
			return nil, errors.New("-awssm-secret needs $AWS_REGION (or $AWS_DEFAULT_REGION), $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY")
		}
		client := consumer.NewSecretsManagerClient(o.awsEndpoint, region, id, secret)
		readers = append(readers, consumer.SecretsManager(client, o.awsSecret, o.awsField))
	}
	if o.keyEnv != "" {
		key := getenv(o.keyEnv)
		if key == "" {
			return nil, fmt.Errorf("-key-env: $%s is empty", o.keyEnv)
		}
		readers = append(readers, consumer.Static("env:"+o.keyEnv, key))
	}
	if len(readers) != 1 {
		return nil, errors.New("name exactly one source: -file, -vault-path, -awssm-secret or -key-env")
	}
	return readers[0], nil
}
