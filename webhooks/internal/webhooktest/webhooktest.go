// Package webhooktest holds the in-memory fakes and checks the inbound
// webhook tests share: an Intake and a ReplayGuard that record their calls,
// a logger writing to a buffer, and AssertNoLeak.
package webhooktest

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// Intake records reports. ExposureFunc / DepartureFunc, when set, answer;
// otherwise a report is Known when its fingerprint is in KnownFingerprints,
// and Duplicate when its ID was accepted before (as the engine does).
type Intake struct {
	ExposureFunc      func(ctx context.Context, r rotator.ExposureReport) (rotator.ExposureResult, error)
	DepartureFunc     func(ctx context.Context, r rotator.DepartureReport) (rotator.DepartureResult, error)
	KnownFingerprints map[string]string // fingerprint → key name

	mu         sync.Mutex
	exposures  []rotator.ExposureReport
	departures []rotator.DepartureReport
	accepted   map[string]bool
}

func (in *Intake) ReportExposure(ctx context.Context, r rotator.ExposureReport) (rotator.ExposureResult, error) {
	in.mu.Lock()
	in.exposures = append(in.exposures, r)
	f := in.ExposureFunc
	in.mu.Unlock()
	if f != nil {
		return f(ctx, r)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	dup := in.accept(r.ID)
	key, known := in.KnownFingerprints[r.Fingerprint]
	if !known {
		return rotator.ExposureResult{Duplicate: dup}, nil
	}
	return rotator.ExposureResult{Known: true, Key: key, Generation: 1, RotationID: "rot-" + key, Duplicate: dup}, nil
}

func (in *Intake) ReportDeparture(ctx context.Context, r rotator.DepartureReport) (rotator.DepartureResult, error) {
	in.mu.Lock()
	in.departures = append(in.departures, r)
	f := in.DepartureFunc
	in.mu.Unlock()
	if f != nil {
		return f(ctx, r)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	return rotator.DepartureResult{Duplicate: in.accept(r.ID)}, nil
}

func (in *Intake) accept(id string) bool {
	if in.accepted == nil {
		in.accepted = map[string]bool{}
	}
	dup := in.accepted[id]
	in.accepted[id] = true
	return dup
}

// Exposures returns the reports received so far.
func (in *Intake) Exposures() []rotator.ExposureReport {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]rotator.ExposureReport(nil), in.exposures...)
}

// Departures returns the reports received so far.
func (in *Intake) Departures() []rotator.DepartureReport {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]rotator.DepartureReport(nil), in.departures...)
}

// Guard is a map-backed ReplayGuard. Err, when set, fails every call
// without recording.
type Guard struct {
	Err error

	mu      sync.Mutex
	records map[string]time.Time // namespace + "\x00" + id → until
	calls   int
}

func (g *Guard) Seen(_ context.Context, namespace, id string, until time.Time) (bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls++
	if g.Err != nil {
		return false, g.Err
	}
	if g.records == nil {
		g.records = map[string]time.Time{}
	}
	k := namespace + "\x00" + id
	_, seen := g.records[k]
	if !seen {
		g.records[k] = until
	}
	return seen, nil
}

// Records returns the recorded ids of namespace with their expiry.
func (g *Guard) Records(namespace string) map[string]time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[string]time.Time{}
	for k, v := range g.records {
		if ns, id, _ := strings.Cut(k, "\x00"); ns == namespace {
			out[id] = v
		}
	}
	return out
}

// Len is the number of records in every namespace.
func (g *Guard) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.records)
}

// Calls is the number of Seen calls.
func (g *Guard) Calls() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls
}

// Buffer is a goroutine-safe log sink.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Logger returns a debug-level JSON logger writing to a fresh Buffer.
func Logger() (*slog.Logger, *Buffer) {
	buf := &Buffer{}
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// AssertNoLeak fails t if any of haystacks contains secret.
func AssertNoLeak(t testing.TB, secret string, haystacks map[string]string) {
	t.Helper()
	if secret == "" {
		t.Fatal("AssertNoLeak: empty secret")
	}
	for what, h := range haystacks {
		if strings.Contains(h, secret) {
			t.Errorf("%s contains the secret:\n%s", what, h)
		}
	}
}

var (
	_ rotator.Intake      = (*Intake)(nil)
	_ rotator.ReplayGuard = (*Guard)(nil)
)
