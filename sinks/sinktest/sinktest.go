// Package sinktest is the conformance suite every rotator.Sink runs: first
// delivery, stage → promote → cleanup with the consumer-visible value checked
// through an independent reader after every step (and continuously in
// between), idempotent replays that write nothing, rollbacks, refusal of
// targets rekey does not manage and their adoption, check-and-set against a
// concurrent writer, outages classified as retryable, Inspect, ReadPending,
// Remove, and — around every call — that no error ever carries a secret.
//
// A sink's test supplies a Harness wired to a real backend and calls Run.
package sinktest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// Options configure a sink built by a Harness.
type Options struct {
	// Adopt lets the sink take over targets that exist without rekey's
	// managed-by marker.
	Adopt bool
}

// Harness connects the suite to one sink and its backend. Functions marked
// optional may be nil; the cases that need them are then skipped with a
// message naming the missing function.
type Harness struct {
	// NewSink builds a sink. Required.
	NewSink func(t *testing.T, opts Options) rotator.Sink
	// NewTarget returns a target that does not exist yet, a different one
	// on every call. Its Path must appear in the sink's error messages.
	// Required.
	NewTarget func(t *testing.T) rotator.Target
	// ReadCurrent reads the value consumers see as current through a client
	// independent of the sink (the backend's official client, or the file
	// itself); found is false when there is none. Required.
	ReadCurrent func(ctx context.Context, target rotator.Target) (value string, found bool, err error)
	// CreateUnmanaged creates target holding value as its current value,
	// the way an operator would, without rekey's managed-by marker.
	// Required.
	CreateUnmanaged func(ctx context.Context, target rotator.Target, value string) error

	// WriteMark returns a value that changes on every write to target (a
	// version counter, the version ids and their labels, an inode…), so the
	// suite can prove that a replay wrote nothing. Optional: without it
	// replays are checked through Inspect and ReadCurrent only.
	WriteMark func(ctx context.Context, target rotator.Target) (string, error)

	// Outage makes the backend unreachable (preferably by pausing it, which
	// keeps its data) and returns a function that restores it. The sink
	// must give up within OutageTimeout. Optional.
	Outage func(t *testing.T) (restore func())
	// OutageTimeout bounds each call made during an outage; 5s when zero.
	OutageTimeout time.Duration

	// ForeignWrite sets a field of target that rekey does not own to n, the
	// way another well-behaved writer would; ForeignRead reads it back (0
	// when unset). Interleave arranges for s to run fn exactly once, after
	// its next read of the target and before the write that follows. The
	// three are optional together.
	ForeignWrite func(ctx context.Context, target rotator.Target, n int) error
	ForeignRead  func(ctx context.Context, target rotator.Target) (int, error)
	Interleave   func(s rotator.Sink, fn func())
}

// Run runs the conformance suite against h.
func Run(t *testing.T, h Harness) {
	t.Helper()
	switch {
	case h.NewSink == nil, h.NewTarget == nil, h.ReadCurrent == nil, h.CreateUnmanaged == nil:
		t.Fatal("sinktest: NewSink, NewTarget, ReadCurrent and CreateUnmanaged are required")
	}
	if h.OutageTimeout == 0 {
		h.OutageTimeout = 5 * time.Second
	}
	cases := []struct {
		name string
		run  func(c *env)
	}{
		{"InspectMissing", testInspectMissing},
		{"FirstDelivery", testFirstDelivery},
		{"StagePromoteCleanup", testStagePromoteCleanup},
		{"ReplayWholeRotation", testReplayWholeRotation},
		{"RestageReplacesAbandonedPending", testRestage},
		{"PromoteUnstaged", testPromoteUnstaged},
		{"RollbackAfterStage", testRollbackAfterStage},
		{"RollbackAfterPromote", testRollbackAfterPromote},
		{"RollbackAfterCleanup", testRollbackAfterCleanup},
		{"RollbackFirstDelivery", testRollbackFirstDelivery},
		{"NotManaged", testNotManaged},
		{"Adopt", testAdopt},
		{"ConcurrentWriter", testConcurrentWriter},
		{"Outage", testOutage},
		{"ReadPending", testReadPending},
		{"ReadValue", testReadValue},
		{"Remove", testRemove},
		{"Replace", testReplace},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(newEnv(t, h))
		})
	}
}

// env is the state of one case: the harness, the secrets minted so far (no
// error may contain any of them) and a sequence for rotation ids.
type env struct {
	t   *testing.T
	h   Harness
	ctx context.Context

	mu      sync.Mutex
	secrets []string
	seq     int
}

func newEnv(t *testing.T, h Harness) *env {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return &env{t: t, h: h, ctx: ctx}
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// secret mints a Kubeadapt-shaped key and remembers it.
func (c *env) secret() string {
	var b strings.Builder
	b.WriteString("ka_live_")
	for range 32 {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(base62))))
		if err != nil {
			c.t.Fatal(err)
		}
		b.WriteByte(base62[n.Int64()])
	}
	v := b.String()
	c.mu.Lock()
	c.secrets = append(c.secrets, v)
	c.mu.Unlock()
	return v
}

// gen is one generation of a key in a case.
type gen struct {
	n     int
	value string
}

func (g gen) fp() string {
	if g.value == "" {
		return ""
	}
	return rotator.Fingerprint(g.value)
}

func (c *env) gen(n int) gen { return gen{n: n, value: c.secret()} }

// delivery describes the rotation from old to g; Secret is set (Stage needs
// it; the other calls must not).
func (c *env) delivery(g, old gen) rotator.Delivery {
	c.mu.Lock()
	c.seq++
	id := fmt.Sprintf("rot-%d-gen-%d", c.seq, g.n)
	c.mu.Unlock()
	return rotator.Delivery{
		RotationID:     id,
		Generation:     g.n,
		Fingerprint:    g.fp(),
		Secret:         rotator.NewSecret(g.value),
		OldGeneration:  old.n,
		OldFingerprint: old.fp(),
	}
}

// noSecret fails the test when err's text contains any secret of the case.
func (c *env) noSecret(what string, err error) {
	c.t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.secrets {
		if strings.Contains(msg, s) {
			c.t.Fatalf("%s: error contains a secret value: %q", what, msg)
		}
	}
	if msg != "" && msg[:1] != strings.ToLower(msg[:1]) {
		c.t.Errorf("%s: error text should start lowercase: %q", what, msg)
	}
}

// sink wraps a rotator.Sink so that every error is checked for secrets.
type sink struct {
	c *env
	s rotator.Sink
}

func (c *env) sink(opts Options) sink { return sink{c: c, s: c.h.NewSink(c.t, opts)} }

func (s sink) stage(t rotator.Target, d rotator.Delivery) error {
	err := s.s.Stage(s.c.ctx, t, d)
	s.c.noSecret("Stage", err)
	return err
}

// delivery for the calls that work from fingerprints: no secret.
func bare(d rotator.Delivery) rotator.Delivery { d.Secret = rotator.Secret{}; return d }

func (s sink) promote(t rotator.Target, d rotator.Delivery) error {
	err := s.s.Promote(s.c.ctx, t, bare(d))
	s.c.noSecret("Promote", err)
	return err
}

func (s sink) cleanup(t rotator.Target, d rotator.Delivery) error {
	err := s.s.Cleanup(s.c.ctx, t, bare(d))
	s.c.noSecret("Cleanup", err)
	return err
}

func (s sink) rollback(t rotator.Target, d rotator.Delivery) error {
	err := s.s.Rollback(s.c.ctx, t, bare(d))
	s.c.noSecret("Rollback", err)
	return err
}

func (s sink) inspect(t rotator.Target) (rotator.SinkState, error) {
	st, err := s.s.Inspect(s.c.ctx, t)
	s.c.noSecret("Inspect", err)
	return st, err
}

// must fails the test on err.
func (c *env) must(what string, err error) {
	c.t.Helper()
	if err != nil {
		c.t.Fatalf("%s: %v", what, err)
	}
}

// deliverFirst stages g as the first value of a fresh target and returns it.
func (c *env) deliverFirst(s sink, g gen) rotator.Target {
	c.t.Helper()
	tgt := c.h.NewTarget(c.t)
	c.must("first Stage", s.stage(tgt, c.delivery(g, gen{})))
	c.wantCurrent(tgt, g)
	return tgt
}

// wantCurrent checks the consumer-visible value through the harness reader.
func (c *env) wantCurrent(tgt rotator.Target, g gen) {
	c.t.Helper()
	v, found, err := c.h.ReadCurrent(c.ctx, tgt)
	c.must("independent read", err)
	switch {
	case !found:
		c.t.Fatalf("consumer reads no current value at %s, want generation %d", tgt.Path, g.n)
	case v != g.value:
		c.t.Fatalf("consumer reads %s at %s, want generation %d (%s)", short(v), tgt.Path, g.n, short(g.value))
	}
}

// wantState checks Inspect.
func (c *env) wantState(s sink, tgt rotator.Target, cur, pend, prev gen) {
	c.t.Helper()
	st, err := s.inspect(tgt)
	c.must("Inspect", err)
	want := rotator.SinkState{Exists: true, Managed: true, Current: cur.fp(), Pending: pend.fp(), Previous: prev.fp()}
	if st != want {
		c.t.Fatalf("Inspect(%s) = %+v, want %+v", tgt.Path, shortState(st), shortState(want))
	}
}

func shortState(s rotator.SinkState) rotator.SinkState {
	s.Current = rotator.ShortFingerprint(s.Current)
	s.Pending = rotator.ShortFingerprint(s.Pending)
	s.Previous = rotator.ShortFingerprint(s.Previous)
	return s
}

// short names a secret in a failure message by its fingerprint.
func short(v string) string { return "fp:" + rotator.ShortFingerprint(rotator.Fingerprint(v)) }

// mark returns the harness's write mark, or "" without one.
func (c *env) mark(tgt rotator.Target) string {
	c.t.Helper()
	if c.h.WriteMark == nil {
		return ""
	}
	m, err := c.h.WriteMark(c.ctx, tgt)
	c.must("WriteMark", err)
	return m
}

// unchanged fails when the target was written since mark m.
func (c *env) unchanged(what string, tgt rotator.Target, m string) {
	c.t.Helper()
	if c.h.WriteMark == nil {
		return
	}
	if now := c.mark(tgt); now != m {
		c.t.Fatalf("%s wrote to %s (write mark %q → %q); a replay must write nothing", what, tgt.Path, m, now)
	}
}

// wantErr checks a refusal: non-nil, wrapping target (when set), naming
// the path.
func (c *env) wantErr(what string, err error, target error, tgt rotator.Target) {
	c.t.Helper()
	if err == nil {
		c.t.Fatalf("%s: no error", what)
	}
	if target != nil && !errors.Is(err, target) {
		c.t.Fatalf("%s: error %q does not wrap %v", what, err, target)
	}
	if !strings.Contains(err.Error(), tgt.Path) {
		c.t.Fatalf("%s: error %q does not name the path %q", what, err, tgt.Path)
	}
}
