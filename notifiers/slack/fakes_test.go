package slack

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack/slacktest"

	"github.com/rekeyhq/rekey/rotator"
)

// memState is an in-memory StateStore; fail makes every call fail.
type memState struct {
	mu   sync.Mutex
	m    map[string]string
	fail error
}

func newMemState() *memState { return &memState{m: map[string]string{}} }

func (s *memState) GetState(_ context.Context, ns, key string) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return "", false, s.fail
	}
	v, ok := s.m[ns+"\x00"+key]
	return v, ok, nil
}

func (s *memState) PutState(_ context.Context, ns, key, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.m[ns+"\x00"+key] = value
	return nil
}

func (s *memState) dump() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for k, v := range s.m {
		b.WriteString(k + "=" + v + "\n")
	}
	return b.String()
}

// fakeRotations is a RotationReader over a map.
type fakeRotations struct {
	mu sync.Mutex
	m  map[string]*rotator.Rotation
}

func (f *fakeRotations) put(r *rotator.Rotation) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string]*rotator.Rotation{}
	}
	c := *r
	f.m[r.ID] = &c
}

func (f *fakeRotations) GetRotation(_ context.Context, id string) (*rotator.Rotation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.m[id]
	if !ok {
		return nil, fmt.Errorf("rotation %s: %w", id, rotator.ErrNotFound)
	}
	c := *r
	return &c, nil
}

// env is one notifier under test with its fakes.
type env struct {
	t         *testing.T
	slack     *fakeSlack
	state     *memState
	rotations *fakeRotations
	logs      *syncBuffer
	n         *Notifier
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func baseConfig(t *testing.T, apiURL string) Config {
	t.Helper()
	t.Setenv("REKEY_TEST_SLACK_TOKEN", testToken)
	cfg := DefaultConfig()
	cfg.TokenEnv = "REKEY_TEST_SLACK_TOKEN"
	cfg.Buttons = true // as app sets it when a slack webhook receives the clicks
	cfg.APIURL = apiURL
	cfg.Channel = "#rekey"
	cfg.OncallGroup = "SONCALL"
	cfg.Timeout = 5 * time.Second
	return cfg
}

// newEnv starts a fake Slack and a notifier; mod adjusts the config.
func newEnv(t *testing.T, mod func(*Config), extra ...slacktest.Binder) *env {
	t.Helper()
	e := &env{t: t, slack: newFakeSlack(t, extra...), state: newMemState(), rotations: &fakeRotations{}, logs: &syncBuffer{}}
	e.n = e.notifier(mod)
	return e
}

// notifier builds a notifier over the env's fakes (a "restart" when called
// again).
func (e *env) notifier(mod func(*Config)) *Notifier {
	e.t.Helper()
	cfg := baseConfig(e.t, e.slack.apiURL())
	if mod != nil {
		mod(&cfg)
	}
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	n, err := New(cfg, logger, e.state, e.rotations)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) notify(evs ...rotator.Event) {
	e.t.Helper()
	for _, ev := range evs {
		if err := e.n.Notify(context.Background(), ev); err != nil {
			e.t.Fatalf("Notify(%s %s): %v", ev.Kind, ev.Phase, err)
		}
	}
}

// assertNoLeak checks that no secret reached Slack, the state store or the
// logs.
func (e *env) assertNoLeak() {
	e.t.Helper()
	for where, text := range map[string]string{"slack": e.slack.dump(), "state": e.state.dump(), "logs": e.logs.String()} {
		for _, s := range []string{fakeSecret, testToken} {
			if strings.Contains(text, s) {
				e.t.Errorf("%s contains secret %q", where, s)
			}
		}
	}
}

// events builds the events of one rotation, as the engine would.
type events struct {
	rotation string
	key      string
	mode     rotator.Mode
	trigger  rotator.Trigger
	owners   []string
	n        int
	at       time.Time
}

func newEvents(rotation, key string) *events {
	return &events{rotation: rotation, key: key, mode: rotator.ModeStaged, trigger: rotator.TriggerAge,
		owners: []string{"ana@example.com"}, at: time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)}
}

func (b *events) ev(kind string, phase rotator.Phase, sev rotator.Severity, msg string, fields map[string]string) rotator.Event {
	b.n++
	b.at = b.at.Add(time.Minute)
	return rotator.Event{ID: b.rotation + "-" + strconv.Itoa(b.n), Kind: kind, Severity: sev, Key: b.key, RotationID: b.rotation,
		Phase: phase, Trigger: b.trigger, Mode: b.mode, Actor: "policy:maxage", Owners: b.owners, Message: msg, Fields: fields, At: b.at}
}

func (b *events) started() rotator.Event {
	p, sev := rotator.PhaseAwaitingApproval, rotator.SeverityInfo
	if b.mode == rotator.ModeEmergency {
		p, sev = rotator.PhaseRevoking, rotator.SeverityCritical
	}
	return b.ev(rotator.EventStarted, p, sev, fmt.Sprintf("%s rotation of %s started (%s): key is 91 days old", b.mode, b.key, b.trigger), nil)
}

func (b *events) phase(from, to rotator.Phase, fields map[string]string) rotator.Event {
	if fields == nil {
		fields = map[string]string{}
	}
	fields["from"] = string(from)
	return b.ev(rotator.EventPhase, to, rotator.SeverityInfo, fmt.Sprintf("%s: %s → %s", b.key, from, to), fields)
}

func (b *events) held(phase rotator.Phase, h rotator.Hold, detail string, sev rotator.Severity) rotator.Event {
	return b.ev(rotator.EventHeld, phase, sev, b.key+" waits: "+detail, map[string]string{"hold": string(h)})
}
