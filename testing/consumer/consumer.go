// Package consumer is a stand-in for a service that calls a Kubeadapt-style
// API with a key it reads from a secret store, for end-to-end tests of
// zero-downtime rotation. A Consumer calls GET /v1/clusters with
// "Authorization: Bearer <key>" without pause (or at a fixed interval),
// re-reads the key from its Reader on a short interval — as a real
// integration would pick up a new key after a deploy — or reads it once and
// never again (a forgotten consumer), and counts every answer by status and
// by key. Its Report names keys only by their SHA-256 fingerprint (the
// fingerprint rekey records), never by value, and keeps the runs of equal
// (key, status) answers with their times, so a test can tell exactly when
// the consumer switched keys and when its answers changed.
//
// With Options.Attest a Consumer also reports to rekey, after every read,
// the fingerprint of the key it holds (attest.go: Standard Webhooks signed,
// written from the specification, not with rekey's code).
//
// testing/cmd/rekey-consumer runs a Consumer as a separate process.
package consumer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Options configures a Consumer.
type Options struct {
	// URL is the API root, e.g. http://127.0.0.1:8089; Path is appended.
	URL string
	// Path of the data API call; default /v1/clusters.
	Path string
	// Reader says where the key comes from.
	Reader Reader
	// Reload is how often the key is read again; 0 reads it once (after the
	// first successful read) and never again.
	Reload time.Duration
	// Interval is the pause between two requests; 0 sends the next request
	// as soon as the previous one was answered.
	Interval time.Duration
	// Timeout bounds each request; default 2s.
	Timeout time.Duration
	// Client sends the requests; default a client with Timeout.
	Client *http.Client
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Attest, when set, reports the key held to rekey after every read.
	Attest *Attest
}

// Consumer calls the API with the key its Reader holds. It is safe to call
// Report while Run runs.
type Consumer struct {
	opts Options

	keyMu sync.Mutex
	key   string
	fp    string

	mu  sync.Mutex
	rep Report
}

// New returns a Consumer; Run starts it.
func New(opts Options) (*Consumer, error) {
	if opts.URL == "" {
		return nil, errors.New("consumer: URL is required")
	}
	if opts.Reader == nil {
		return nil, errors.New("consumer: Reader is required")
	}
	if opts.Path == "" {
		opts.Path = "/v1/clusters"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: opts.Timeout}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	mode := ModeReload
	if opts.Reload <= 0 {
		mode = ModeOnce
	}
	c := &Consumer{opts: opts}
	c.rep = Report{Source: opts.Reader.String(), Mode: mode, Reload: opts.Reload.String(), ByStatus: map[string]int{}}
	return c, nil
}

// Run reads the key, then calls the API until ctx ends. It returns nil
// when ctx ends; the first key read retries (every 100 ms, or Reload) until
// it succeeds.
func (c *Consumer) Run(ctx context.Context) error {
	c.mu.Lock()
	c.rep.StartedAt = c.opts.Now()
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.rep.StoppedAt = c.opts.Now()
		c.mu.Unlock()
	}()
	retry := c.opts.Reload
	if retry <= 0 {
		retry = 100 * time.Millisecond
	}
	for !c.readKey(ctx) {
		if !sleep(ctx, retry) {
			return nil
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	if c.opts.Reload > 0 {
		wg.Go(func() {
			for sleep(ctx, c.opts.Reload) {
				c.readKey(ctx)
			}
		})
	}
	for ctx.Err() == nil {
		c.call(ctx)
		if c.opts.Interval > 0 && !sleep(ctx, c.opts.Interval) {
			break
		}
	}
	return nil
}

// readKey reads the key once and reports whether a key is now held.
func (c *Consumer) readKey(ctx context.Context) bool {
	v, err := c.opts.Reader.Read(ctx)
	now := c.opts.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rep.Reads++
	if err != nil {
		if ctx.Err() != nil {
			return false
		}
		c.rep.ReadErrors++
		c.rep.LastReadError = err.Error()
		return c.held()
	}
	v = strings.TrimSpace(v)
	if v == "" {
		c.rep.ReadErrors++
		c.rep.LastReadError = "the source holds no key"
		return c.held()
	}
	fp := Fingerprint(v)
	c.keyMu.Lock()
	changed := fp != c.fp
	c.key, c.fp = v, fp
	c.keyMu.Unlock()
	if changed {
		if _, seen := c.rep.Key(fp); !seen {
			c.rep.Keys = append(c.rep.Keys, KeySeen{Fingerprint: fp, ReadAt: now})
		}
		c.rep.Switches = append(c.rep.Switches, Switch{At: now, To: fp})
	}
	if c.opts.Attest != nil {
		c.mu.Unlock()
		c.attest(ctx, fp)
		c.mu.Lock()
	}
	return true
}

func (c *Consumer) held() bool {
	c.keyMu.Lock()
	defer c.keyMu.Unlock()
	return c.key != ""
}

// call sends one request with the key held now and records the answer.
func (c *Consumer) call(ctx context.Context) {
	c.keyMu.Lock()
	key, fp := c.key, c.fp
	c.keyMu.Unlock()
	sent := c.opts.Now()
	status, err := c.send(ctx, key)
	if err != nil && ctx.Err() != nil {
		return // stopped mid-request: not an answer
	}
	c.record(fp, status, err, sent, c.opts.Now())
}

func (c *Consumer) send(ctx context.Context, key string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.opts.URL, "/")+c.opts.Path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := c.opts.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, nil
}

// StatusError is the ByStatus and Span label of a request that got no HTTP
// answer (connection refused, timeout).
const StatusError = "error"

func (c *Consumer) record(fp string, status int, err error, sent, answered time.Time) {
	label := StatusError
	if err == nil {
		label = fmt.Sprint(status)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r := &c.rep
	r.Requests++
	r.ByStatus[label]++
	if err == nil && status >= 200 && status < 300 {
		r.Served++
	} else {
		r.Failures++
		if err != nil {
			r.LastError = redactedError(err)
		}
	}
	for i := range r.Keys {
		if r.Keys[i].Fingerprint == fp {
			k := &r.Keys[i]
			k.Requests++
			if err == nil && status >= 200 && status < 300 {
				k.Served++
			}
			if k.FirstSentAt.IsZero() {
				k.FirstSentAt = sent
			}
			k.LastSentAt = sent
			break
		}
	}
	if n := len(r.Spans); n > 0 && r.Spans[n-1].Fingerprint == fp && r.Spans[n-1].Status == label {
		last := &r.Spans[n-1]
		last.Count++
		last.LastSentAt, last.LastAnsweredAt = sent, answered
		return
	}
	r.Spans = append(r.Spans, Span{Fingerprint: fp, Status: label, Count: 1,
		FirstSentAt: sent, FirstAnsweredAt: answered, LastSentAt: sent, LastAnsweredAt: answered})
}

// redactedError describes a transport error without the request URL's
// details the net/http error repeats (the URL holds no secret, but keep the
// message short and stable).
func redactedError(err error) string {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner.Error()
		}
	}
	return err.Error()
}

// Report returns a copy of what the consumer saw so far.
func (c *Consumer) Report() Report {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.rep
	r.ByStatus = maps.Clone(c.rep.ByStatus)
	r.Keys = slices.Clone(c.rep.Keys)
	r.Spans = slices.Clone(c.rep.Spans)
	r.Switches = slices.Clone(c.rep.Switches)
	return r
}

// Fingerprint is the SHA-256 of a key in hex, as rekey records it.
func Fingerprint(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// sleep waits d or until ctx ends, and reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
