package app

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/rekeyhq/rekey/auth"
	"github.com/rekeyhq/rekey/config"
	"github.com/rekeyhq/rekey/internal/auditlog"
	"github.com/rekeyhq/rekey/internal/secretref"
	"github.com/rekeyhq/rekey/policies"
	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/store/postgres"
	"github.com/rekeyhq/rekey/store/sqlite"
	"github.com/rekeyhq/rekey/store/sqlstore"
	"github.com/rekeyhq/rekey/traffic/fixed"
)

// Daemon is everything built from a configuration.
type Daemon struct {
	Config   *config.Config
	Engine   *rotator.Engine
	Store    Store
	Registry *prometheus.Registry
	Logger   *slog.Logger
	// Auth authenticates admin API requests; Directory canonicalises
	// identities.
	Auth         *auth.Authenticator
	Directory    *auth.Directory
	routes       []route
	limiter      *auth.Limiter
	metricsToken string
	teams        map[string]string // key → owner team
	member       bool              // this process shows in the cluster view
	starters     []func(context.Context) error
	closers      []func() error
	// checkpoints writes signed audit checkpoints; nil without
	// audit.checkpoints_dir.
	checkpoints *auditlog.Writer
	// built are the adapters and keys, for the dependency checks.
	built built
	// readiness caches the dependency checks behind /readyz.
	readiness *readiness
	// ping caches the store's answer to a ping for a second: /readyz is
	// unauthenticated, and a flood of it must not take the store's
	// connections.
	ping pingCache
}

// built are the adapters Build made, by configured name, and the keys.
type built struct {
	issuers   map[string]rotator.Issuer
	sinks     map[string]rotator.Sink
	notifiers map[string]rotator.Notifier
	traffic   map[string]rotator.TrafficSource
	keys      []*rotator.Key
}

// Store is the rotator.Store the built-in stores implement, plus audit
// verification.
type Store interface {
	rotator.Store
	rotator.StateStore
	rotator.InboundStore
	rotator.ReplayGuard
	rotator.Outbox
	rotator.ConsumerStore
	rotator.TotalsStore
	VerifyAudit(ctx context.Context) ([]rotator.AuditProblem, error)
	SetAuditKeys(k rotator.AuditKeys)
	AuditHead(ctx context.Context) (seq int64, hash string, err error)
	Ping(ctx context.Context) error
}

// BuildOptions tune Build for tests and the CLI.
type BuildOptions struct {
	// Failpoint is passed to the engine (crash tests).
	Failpoint func(string)
	// Registry receives metrics; nil creates one.
	Registry *prometheus.Registry
	// Owner overrides the process's lease identity (default InstanceID).
	Owner string
	// EnqueueOnly queues notifications for the daemon to deliver (the CLI).
	EnqueueOnly bool
	// Version is the binary's version for rekey_build_info and the cluster
	// view (empty: the module version Go recorded).
	Version string
	// Revision is the stamped commit (rekey_build_info); else the VCS
	// revision Go recorded.
	Revision string
	// NoMigrate opens the store without migrating its schema (the CLI:
	// only a daemon's start migrates); an older schema fails with
	// sqlstore.ErrSchemaBehind.
	NoMigrate bool
}

// ErrSchemaBehind: a store opened with BuildOptions.NoMigrate has an older
// schema than this build's (a daemon of this version migrates it).
var ErrSchemaBehind = sqlstore.ErrSchemaBehind

// Build validates cfg and wires the store, every adapter and the engine. It
// contacts nothing but the store; adapters connect lazily.
func Build(ctx context.Context, cfg *config.Config, logger *slog.Logger, o BuildOptions) (*Daemon, error) {
	if errs := Validate(cfg); len(errs) > 0 {
		return nil, errs
	}
	d := &Daemon{Config: cfg, Logger: logger, Registry: o.Registry, member: !o.EnqueueOnly}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
		d.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	if err := d.Registry.Register(buildInfo(o.Version, o.Revision)); err != nil && !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = d.Close()
		}
	}()
	var err error
	if d.Store, err = openStore(ctx, cfg.Store, o.NoMigrate); err != nil {
		return nil, err
	}
	d.closers = append(d.closers, d.Store.Close)
	// The CLI (EnqueueOnly) seals the events it appends like the daemon
	// but writes no checkpoints, so it needs no signing key.
	if err := d.buildAudit(cfg.Audit, !o.EnqueueOnly); err != nil {
		return nil, err
	}
	if err := d.buildAuth(); err != nil {
		return nil, err
	}

	// Adapters are built before the engine, which needs them; inbound
	// webhooks after it, since they hand it what they receive. A slack
	// notifier posts buttons only if a slack webhook receives their clicks.
	buttons := map[string]bool{}
	for name := range slackWebhooks(cfg.Webhooks) {
		buttons[name] = true
	}
	base := deps{store: d.Store, slackButtons: buttons}
	issuers, err := buildFamily(ctx, "issuers", cfg.Issuers, issuerFactories, logger, base)
	if err != nil {
		return nil, err
	}
	sinks, err := buildFamily(ctx, "sinks", cfg.Sinks, sinkFactories, logger, base)
	if err != nil {
		return nil, err
	}
	notifiers, err := buildFamily(ctx, "notifiers", cfg.Notifiers, notifierFactories, logger, base)
	if err != nil {
		return nil, err
	}
	traffic, err := buildFamily(ctx, "traffic", cfg.Traffic, trafficFactories, logger, base)
	if err != nil {
		return nil, err
	}
	if _, declared := traffic[fixedName]; !declared {
		// "fixed" is built in: a key may name it without declaring it.
		traffic[fixedName] = builtinFixed
	}
	for _, m := range []map[string]any{anyMap(issuers), anyMap(sinks), anyMap(notifiers), anyMap(traffic)} {
		for _, a := range m {
			d.adopt(a)
		}
	}
	keys := make([]*rotator.Key, 0, len(cfg.Keys))
	maxAges := map[policies.MaxAge][]rotator.Policy{}
	gates := &gatePlanner{cfg: cfg}
	for i, kc := range cfg.Keys {
		k := buildKey(cfg, i, kc, issuers, sinks, traffic, maxAges, gates)
		// Approvers are compared with canonical principals: list them in
		// canonical form too (an approver spelled Bob@Example.com in the
		// file is the principal bob@example.com).
		approvers := make([]string, 0, len(k.Approval.Approvers))
		for _, a := range k.Approval.Approvers {
			approvers = append(approvers, d.Directory.Canonical(a))
		}
		if len(approvers) > 0 {
			k.Approval.Approvers = approvers
		}
		keys = append(keys, k)
	}
	d.built = built{issuers: issuers, sinks: sinks, notifiers: notifiers, traffic: traffic, keys: keys}
	d.Engine, err = rotator.New(rotator.Options{
		Store:               d.Store,
		Keys:                keys,
		Notifiers:           notifiers,
		Logger:              logger.With("component", "engine"),
		Metrics:             rotator.NewMetricsWith(d.Registry, rotator.MetricsOptions{PerKey: cfg.Daemon.MetricsPerKey == nil || *cfg.Daemon.MetricsPerKey}),
		Concurrency:         cfg.Daemon.Concurrency,
		Breaker:             rotator.BreakerPolicy{Max: cfg.Breaker.Max, Window: cfg.Breaker.Window, Exempt: cfg.Breaker.Exempt},
		Retention:           rotator.Retention{Outbox: cfg.Retention.Outbox, Inbound: cfg.Retention.Inbound, Digest: cfg.Retention.DigestWindow},
		PollInterval:        cfg.Daemon.PollInterval,
		StepTimeout:         cfg.Daemon.StepTimeout,
		Backoff:             rotator.Backoff{Base: cfg.Daemon.RetryBase, Max: cfg.Daemon.RetryMax, Factor: 2, Jitter: 0.2},
		Failpoint:           o.Failpoint,
		Owner:               cmp.Or(o.Owner, InstanceID()),
		LeaseTTL:            cfg.Daemon.LeaseTTL,
		Member:              member(o),
		Inbound:             d.Store,
		State:               d.Store,
		OnDeparted:          d.revokeTokensOf,
		Identities:          d.Directory.Names,
		Outbox:              d.Store,
		OutboxDatabaseClock: true,
		EnqueueOnly:         o.EnqueueOnly,
	})
	if err != nil {
		return nil, err
	}
	d.closers = append(d.closers, func() error { d.Engine.Close(5 * time.Second); return nil })
	hooks, err := buildWebhooks(cfg.Webhooks, hookDeps{logger: logger, engine: d.Engine, store: d.Store, notifiers: notifiers,
		decider: canonicalDecider{d.Engine, d.Directory}})
	if err != nil {
		return nil, err
	}
	for _, h := range hooks {
		d.adopt(h.handler)
	}
	d.routes = append(d.routes, hooks...)
	ok = true
	return d, nil
}

// adopt registers an adapter's optional capabilities: Start runs with the
// daemon, Close when it stops (in reverse order of adoption, so inbound
// handlers, adopted last, stop before the engine they feed).
func (d *Daemon) adopt(a any) {
	if c, ok := a.(interface{ Close() error }); ok {
		d.closers = append(d.closers, c.Close)
	}
	if s, ok := a.(interface{ Start(context.Context) error }); ok {
		d.starters = append(d.starters, s.Start)
	}
}

// Close releases the store and adapters.
func (d *Daemon) Close() error {
	var errs []error
	for i := len(d.closers) - 1; i >= 0; i-- {
		errs = append(errs, d.closers[i]())
	}
	d.closers = nil
	return errors.Join(errs...)
}

func openStore(ctx context.Context, s config.Store, noMigrate bool) (Store, error) {
	switch s.Type {
	case "postgres":
		dsn, err := secretref.Ref{Env: s.DSNEnv, File: s.DSNFile}.Resolve()
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		return postgres.OpenWith(ctx, dsn.Reveal(), sqlstore.Options{NoMigrate: noMigrate})
	default:
		return sqlite.OpenWith(ctx, s.Path, sqlite.Options{Synchronous: s.Synchronous, NoMigrate: noMigrate})
	}
}

func buildFamily[T any](_ context.Context, family string, list []config.Adapter, fs map[string]factory[T], logger *slog.Logger, base deps) (map[string]T, error) {
	out := make(map[string]T, len(list))
	for i, a := range list {
		path := fmt.Sprintf("%s[%d]", family, i)
		d := base
		d.logger, d.name = logger.With("adapter", a.Name, "adapter_type", a.Type), a.Name
		v, err := fs[a.Type].build(a.Settings, path, d)
		if err != nil {
			return nil, fmt.Errorf("%s (%s %q): %w", path, a.Type, a.Name, err)
		}
		out[a.Name] = v
	}
	return out, nil
}

func anyMap[T any](m map[string]T) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// builtinFixed backs drain gates that name no source.
var builtinFixed = fixed.New(fixed.DefaultConfig())

// buildKey builds the engine's key kc (index i). Keys with the same
// max_age policy and no other share one (read-only, capped) policy list:
// 100,000 keys need a handful, not 100,000.
func buildKey(cfg *config.Config, i int, kc config.Key, issuers map[string]rotator.Issuer, sinks map[string]rotator.Sink, traffic map[string]rotator.TrafficSource, maxAges map[policies.MaxAge][]rotator.Policy, gates *gatePlanner) *rotator.Key {
	eff := cfg.Effective(kc)
	k := &rotator.Key{
		Name: kc.Name, Issuer: issuers[kc.Issuer], IssuerName: kc.Issuer, Params: kc.Params, Owners: kc.Owners,
		Notifiers: eff.Notify, Bootstrap: true,
	}
	if len(kc.Sinks) > 0 {
		k.Sinks = make([]rotator.SinkBinding, 0, len(kc.Sinks))
	}
	for _, b := range kc.Sinks {
		path := b.Path
		if path == "" {
			path = kc.Name
		}
		k.Sinks = append(k.Sinks, rotator.SinkBinding{SinkName: b.Sink, Sink: sinks[b.Sink], Target: rotator.Target{Key: kc.Name, Path: path, Params: b.Params}})
	}
	maxAge := policies.MaxAge{MaxAge: config.DefaultMaxAge}
	if p := eff.Policies; p != nil {
		if p.MaxAge > 0 {
			maxAge.MaxAge = p.MaxAge
		}
		maxAge.WarnBefore = p.WarnBefore
	}
	if maxAges[maxAge] == nil {
		maxAges[maxAge] = []rotator.Policy{maxAge}[:1:1]
	}
	k.Policies = maxAges[maxAge]
	k.MaxAge = maxAge.MaxAge
	if p := eff.Policies; p != nil && p.Unauthorized != nil {
		u := p.Unauthorized
		k.Policies = append(k.Policies, policies.Unauthorized{Threshold: u.Threshold})
		k.Unauthorized = &rotator.TrafficWatch{Source: traffic[u.Source], SourceName: u.Source, Query: u.Query}
	}
	for _, w := range eff.Windows {
		pw, _ := config.ParseWindow(w) // validated
		k.Windows = append(k.Windows, rotator.Window{Days: pw.Days, Start: pw.Start, End: pw.End, Location: pw.Location})
	}
	if a := eff.Approval; a != nil {
		for _, g := range a.Gates {
			k.Approval.Gates = append(k.Approval.Gates, rotator.Gate(g))
		}
		k.Approval.Approvers, k.Approval.Required, k.Approval.ExpireAfter = a.Approvers, a.Required, a.ExpireAfter
		k.Approval.RevokeRequired = a.RevokeRequired
	}
	k.Drain = drainPolicy(gates.plan(i, kc), eff, traffic)
	if w := eff.Watch; w != nil {
		k.Watch = rotator.WatchPolicy{Period: w.Period, PollInterval: w.PollInterval}
	}
	if eff.Verify != nil {
		k.Verify = *eff.Verify
	}
	if eff.Bootstrap != nil {
		k.Bootstrap = *eff.Bootstrap
	}
	if d := eff.Decommission; d != nil {
		k.Decommission.SecondPerson = d.SecondPerson
	}
	k.Reminders = rotator.DefaultReminders
	if r := eff.Reminders; r != nil {
		if r.Every > 0 {
			k.Reminders.Every = r.Every
		}
		if r.EscalateAfter > 0 {
			k.Reminders.EscalateAfter = r.EscalateAfter
		}
		if r.SecretExpireAfter > 0 {
			k.Reminders.SecretExpireAfter = r.SecretExpireAfter
		}
	}
	return k
}

// InstanceID names this process in rotation leases and the cluster view:
// the host name for people to read, and a random part that makes it unique
// per process — two clones with the same host name and listen address (a
// fixed container host name, cloned VMs) never share a lease.
func InstanceID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return host + "/" + hex.EncodeToString(b)
}

// member is what the daemon shows of itself in the cluster view; the CLI
// (EnqueueOnly) is no member.
func member(o BuildOptions) *rotator.Member {
	if o.EnqueueOnly {
		return nil
	}
	host, _ := os.Hostname()
	return &rotator.Member{Host: host, PID: os.Getpid(), Version: cmp.Or(o.Version, "(devel)")}
}
