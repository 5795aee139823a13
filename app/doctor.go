package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/rekeyhq/rekey/config"
	"github.com/rekeyhq/rekey/internal/secretref"
	"github.com/rekeyhq/rekey/rotator"
)

// CheckResult is the outcome of one pre-flight check: a configuration
// problem, or a read-only call to a dependency.
type CheckResult struct {
	// Kind is config, store, issuer, sink, notifier or traffic.
	Kind string `json:"kind"`
	// Name says what was checked ("issuer kubeadapt", "sink vault:
	// secret/billing (key billing)").
	Name string `json:"name"`
	OK   bool   `json:"ok"`
	// Skipped: there is nothing to call (an issuer a person operates) or no
	// read-only call exists; Detail says which. A skipped check is OK.
	Skipped bool   `json:"skipped,omitempty"`
	Detail  string `json:"detail,omitempty"`
	// Fix is what to do about a failed check.
	Fix string `json:"fix,omitempty"`
	// needed: the engine needs it before it acts (store, issuers, sinks).
	needed bool
}

// Report is the outcome of `rekey doctor`.
type Report struct {
	Config  string        `json:"config"`
	Results []CheckResult `json:"checks"`
}

// Exit codes of a report: configuration problems are 2, failing
// dependencies 1.
const (
	DoctorOK         = 0
	DoctorDependency = 1
	DoctorConfig     = 2
)

// ExitCode is 2 when the configuration is wrong (invalid, a secret
// reference unresolved), 1 when a dependency failed, 0 when all passed.
func (r Report) ExitCode() int {
	code := DoctorOK
	for _, c := range r.Results {
		switch {
		case c.OK:
		case c.Kind == "config":
			return DoctorConfig
		default:
			code = DoctorDependency
		}
	}
	return code
}

// Doctor checks the configuration at path completely and then every
// dependency it names with read-only calls: the store, each issuer (auth,
// list), each sink target (auth, read, ownership marker), each notifier
// (Slack auth.test and channel access), each key's traffic query rendered
// with the key's real values. It reports every problem at once, each with
// its fix, and changes nothing at any dependency.
func Doctor(ctx context.Context, path string, logger *slog.Logger) Report {
	rep := Report{Config: path}
	cfg, err := config.Load(path)
	var errs config.Errors
	if err != nil && (!errors.As(err, &errs) || cfg == nil) {
		rep.Results = append(rep.Results, CheckResult{Kind: "config", Name: "configuration file", Detail: err.Error(),
			Fix: "pass the configuration with -c FILE (or REKEY_CONFIG)"})
		return rep
	}
	errs = append(errs, Validate(cfg)...)
	for _, e := range errs {
		rep.Results = append(rep.Results, CheckResult{Kind: "config", Name: e.Path, Detail: e.Msg, Fix: "fix the configuration (rekey validate lists every problem)"})
	}
	refs := SecretRefs(cfg)
	missing := 0
	for _, r := range refs {
		if _, err := r.Ref.Resolve(); err != nil {
			missing++
			fix := "export " + r.Ref.Env + " in the daemon's environment"
			if r.Ref.Env != "" && !secretref.ValidEnvName(r.Ref.Env) {
				fix = "name the environment variable that holds the secret in " + r.Path + ", not the secret itself"
			}
			if r.Ref.File != "" {
				fix = "create " + r.Ref.File + " (readable by rekey, not empty) or point " + r.Path + " elsewhere"
			}
			rep.Results = append(rep.Results, CheckResult{Kind: "config", Name: "secret " + r.Path, Detail: err.Error(), Fix: fix})
		}
	}
	if len(errs) > 0 || missing > 0 {
		return rep
	}
	rep.Results = append(rep.Results, CheckResult{Kind: "config", Name: "configuration", OK: true,
		Detail: fmt.Sprintf("valid: %d keys, %d issuers, %d sinks, %d notifiers, %d traffic sources; %d secret references resolve",
			len(cfg.Keys), len(cfg.Issuers), len(cfg.Sinks), len(cfg.Notifiers), len(cfg.Traffic), len(refs))})
	// A SQLite store that does not exist yet is not created here: the
	// adapters are built over a throw-away one, and the check says where
	// `rekey run` will create it. fresh replaces the store's check.
	var fresh *CheckResult
	if cfg.Store.Type != "postgres" {
		if r, tmp := freshSQLite(cfg.Store.Path); r != nil {
			fresh = r
			defer os.RemoveAll(tmp)
			cfg.Store.Path = filepath.Join(tmp, "rekey.db")
		}
	}
	// doctor never migrates: a schema older than this build's is what the
	// daemon of this version migrates at its start (reported), and the
	// adapters are then checked over a throw-away store.
	d, err := Build(ctx, cfg, logger, BuildOptions{Owner: "doctor", EnqueueOnly: true, NoMigrate: fresh == nil})
	if errors.Is(err, ErrSchemaBehind) {
		fresh = &CheckResult{Kind: "store", Name: "store " + cmp.Or(cfg.Store.Type, "sqlite"), OK: true, needed: true,
			Detail: err.Error() + " (rekey run of this version migrates it at start; doctor changed nothing)"}
		tmp, terr := os.MkdirTemp("", "rekey-doctor-")
		if terr == nil {
			defer os.RemoveAll(tmp)
			cfg.Store = config.Store{Type: "sqlite", Path: filepath.Join(tmp, "rekey.db")}
			d, err = Build(ctx, cfg, logger, BuildOptions{Owner: "doctor", EnqueueOnly: true})
		}
	}
	var cerrs config.Errors
	switch {
	case errors.As(err, &cerrs):
		for _, e := range cerrs {
			rep.Results = append(rep.Results, CheckResult{Kind: "config", Name: e.Path, Detail: e.Msg,
				Fix: "fix " + e.Path + " in the configuration or the secret it names"})
		}
		return rep
	case err != nil:
		rep.Results = append(rep.Results, CheckResult{Kind: "store", Name: "build", Detail: err.Error(),
			Fix: "check the store (store.path writable, or store.dsn_env reachable) and the adapter named in the error"})
		return rep
	}
	defer d.Close()
	res := d.CheckDependencies(ctx, true)
	for i := range res {
		if res[i].Kind == "store" && fresh != nil {
			res[i] = *fresh
		}
	}
	rep.Results = append(rep.Results, res...)
	return rep
}

// freshSQLite reports a SQLite store that does not exist yet — OK when
// the nearest existing directory above it is writable — and a temporary
// directory to build over instead; nil when the store exists.
func freshSQLite(path string) (*CheckResult, string) {
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		return nil, ""
	}
	tmp, err := os.MkdirTemp("", "rekey-doctor-")
	if err != nil {
		return nil, ""
	}
	abs, _ := filepath.Abs(path)
	r := &CheckResult{Kind: "store", Name: "store sqlite", OK: true, needed: true,
		Detail: "not created yet: rekey run creates " + abs}
	dir := filepath.Dir(abs)
	for {
		if _, err := os.Stat(dir); err == nil {
			break
		}
		dir = filepath.Dir(dir)
	}
	if err := syscall.Access(dir, 2 /* W_OK */); err != nil {
		r.OK, r.Detail = false, fmt.Sprintf("%s does not exist and %s is not writable: %v", abs, dir, err)
		r.Fix = "create the directory of store.path, writable by rekey's user, or change store.path"
	}
	return r, tmp
}

// depCheck is one read-only call to a dependency.
type depCheck struct {
	kind, name string
	needed     bool
	fix        string
	// run returns what it found; skip marks a check with nothing to call.
	run func(ctx context.Context) (detail string, skip bool, err error)
}

// checkTimeout bounds each dependency check.
const checkTimeout = 10 * time.Second

// CheckDependencies makes the read-only calls of the dependency checks, in
// parallel, each bounded by checkTimeout. all checks every sink target and
// every key's traffic query (doctor); otherwise one target and one query
// per adapter (readiness, refreshed in the background).
func (d *Daemon) CheckDependencies(ctx context.Context, all bool) []CheckResult {
	checks := d.dependencyChecks(ctx, all)
	out := make([]CheckResult, len(checks))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			cctx, cancel := context.WithTimeout(ctx, checkTimeout)
			defer cancel()
			detail, skip, err := c.run(cctx)
			r := CheckResult{Kind: c.kind, Name: c.name, OK: err == nil, Skipped: skip, Detail: detail, needed: c.needed}
			if err != nil {
				r.Detail, r.Fix = err.Error(), c.fix
			}
			out[i] = r
		})
	}
	wg.Wait()
	return out
}

// dependencyChecks lists the checks of d's dependencies.
func (d *Daemon) dependencyChecks(ctx context.Context, all bool) []depCheck {
	checks := []depCheck{{kind: "store", name: "store " + cmp.Or(d.Config.Store.Type, "sqlite"), needed: true,
		fix: "check store.path (SQLite: its directory is writable) or store.dsn_env (PostgreSQL reachable, credentials valid)",
		run: func(ctx context.Context) (string, bool, error) {
			st, err := d.Store.KeyStates(ctx)
			return fmt.Sprintf("answers; %d keys with credentials", len(st)), false, err
		}}}
	usedIssuer := map[string]*rotator.Key{}
	usedSource := map[string]bool{}
	usedSink := map[string]bool{}
	for _, k := range d.built.keys {
		if _, ok := usedIssuer[k.IssuerName]; !ok {
			usedIssuer[k.IssuerName] = k
		}
		for _, b := range k.Sinks {
			if all || !usedSink[b.SinkName] {
				usedSink[b.SinkName] = true
				checks = append(checks, d.sinkCheck(k, b, all))
			}
		}
		for _, q := range trafficQueries(k) {
			if q.source == nil || q.name == "fixed" || (!all && usedSource[q.name]) {
				continue
			}
			usedSource[q.name] = true
			if all {
				checks = append(checks, d.trafficCheck(k, q))
			} else {
				checks = append(checks, d.sourceCheck(q))
			}
		}
	}
	for _, name := range sortedKeys(usedIssuer) {
		checks = append(checks, d.issuerCheck(name, usedIssuer[name], all))
	}
	for _, name := range sortedKeys(d.built.notifiers) {
		checks = append(checks, d.notifierCheck(name))
	}
	return checks
}

// probeChecker is an issuer a person operates whose verify probe can be
// called read-only (the manual issuer): with an invalid key it must answer
// 401. configured is false when no probe is configured.
type probeChecker interface {
	CheckProbe(ctx context.Context, key string, params map[string]any) (configured bool, err error)
}

// issuerCheck calls the issuer read-only. A manual issuer's verify probe is
// called by doctor only (all), never by the readiness refresh: its request
// with an invalid key is a 401 at the issuer, which a drain gate counting
// failures with unidentifiable keys would see, again and again.
func (d *Daemon) issuerCheck(name string, k *rotator.Key, all bool) depCheck {
	is := d.built.issuers[name]
	fix := fmt.Sprintf("check %s: its URL is reachable, its credential is valid and allowed to list keys", d.adapterPath("issuers", name))
	if _, ok := is.(probeChecker); ok {
		fix = fmt.Sprintf("check verify.url of %s: reachable from rekey, and answering 401 to an unknown key (submit and confirm probe with it)", d.adapterPath("issuers", name))
	}
	return depCheck{kind: "issuer", name: "issuer " + name, needed: true,
		fix: fix,
		run: func(ctx context.Context) (string, bool, error) {
			switch x := is.(type) {
			case rotator.Checker:
				return "answers", false, x.Check(ctx)
			case probeChecker:
				// A person mints and revokes, but submit and confirm rely
				// on its verify probe: it must answer, and judge keys.
				if !all {
					return "a person mints and revokes; its verify probe is checked by rekey doctor", true, nil
				}
				configured, err := x.CheckProbe(ctx, k.Name, k.Params)
				if !configured {
					return "a person mints and revokes; no verify probe configured: nothing to call", true, nil
				}
				return "verify probe answers 401 to an invalid key (it tells revoked keys apart)", false, err
			case rotator.HumanIssuer:
				return "a person mints and revokes: nothing to call", true, nil
			case rotator.Finder:
				ids, err := x.FindByName(ctx, k.Name, rotator.CredentialName(k.Name, 1))
				detail := fmt.Sprintf("lists credentials (%d named %s)", len(ids), rotator.CredentialName(k.Name, 1))
				if im, ok := is.(rotator.IdempotentMinter); ok && im.IdempotencyWindow() > 0 {
					detail += fmt.Sprintf("; mints carry an idempotency key (kept %s by the issuer)", im.IdempotencyWindow())
				}
				return detail, false, err
			}
			return "not checked: this issuer has no read-only call; the first mint is its first contact", true, nil
		}}
}

// sinkCheck reads one target. strict (doctor) also fails a target that
// exists without rekey's marker; readiness only needs the sink to answer
// (one key's foreign target must not keep the engine from starting: the
// rotation's own preflight refuses it).
func (d *Daemon) sinkCheck(k *rotator.Key, b rotator.SinkBinding, strict bool) depCheck {
	name := fmt.Sprintf("sink %s: %s (key %s)", b.SinkName, b.Target.Path, k.Name)
	if !strict {
		name = "sink " + b.SinkName // readiness: one target per sink, named on the public listener
	}
	fix := fmt.Sprintf("check %s: reachable, credentials valid and allowed to read %s", d.adapterPath("sinks", b.SinkName), b.Target.Path)
	return depCheck{kind: "sink", name: name, needed: true, fix: fix,
		run: func(ctx context.Context) (string, bool, error) {
			st, err := b.Sink.Inspect(ctx, b.Target)
			switch {
			case err != nil:
				return "", false, err
			case !st.Exists:
				return "readable; not created yet (the first delivery creates it)", false, nil
			case !st.Managed && d.adopts(b.SinkName):
				return "readable; exists without rekey's marker and will be adopted (adopt: true)", false, nil
			case !st.Managed && !strict:
				return "readable; exists without rekey's marker (rekey doctor reports it)", false, nil
			case !st.Managed:
				return "", false, fmt.Errorf("%s exists without rekey's managed-by marker: rekey will not overwrite it (remove it, mark it managed, or bind the key to another path)", b.Target.Path)
			}
			return "readable; managed by rekey", false, nil
		}}
}

type keyQuery struct {
	what, name string
	source     rotator.TrafficSource
	query      string
	question   rotator.Question
}

// trafficQueries are the key's queries as its rotations ask them: one per
// question of its drain gate, and its unauthorized-traffic policy's.
func trafficQueries(k *rotator.Key) []keyQuery {
	var out []keyQuery
	for _, c := range k.Drain.Checks {
		out = append(out, keyQuery{what: "drain " + string(c.Question), name: c.SourceName, source: c.Source, query: c.Query, question: c.Question})
	}
	if len(out) == 0 {
		out = append(out, keyQuery{what: "drain", name: k.Drain.SourceName, source: k.Drain.Source, query: k.Drain.Query})
	}
	if u := k.Unauthorized; u != nil {
		out = append(out, keyQuery{what: "unauthorized", name: u.SourceName, source: u.Source, query: u.Query})
	}
	return out
}

// sourceCheck is readiness's check of a traffic source: its Checker only
// (a key's query is doctor's business, and a rate source keeps state per
// key that a query from here would disturb).
func (d *Daemon) sourceCheck(q keyQuery) depCheck {
	return depCheck{kind: "traffic", name: "traffic " + q.name,
		fix: fmt.Sprintf("check %s: its URL is reachable and its credentials valid", d.adapterPath("traffic", q.name)),
		run: func(ctx context.Context) (string, bool, error) {
			if c, ok := q.source.(rotator.Checker); ok {
				return "answers", false, c.Check(ctx)
			}
			return "not checked: this source has no read-only check (rekey doctor runs the keys' queries)", true, nil
		}}
}

// trafficCheck renders the key's query with its real values (its current
// credential as the old one, the next generation as the new one) and runs
// it: a wrong metric or label name shows now, not after the cut-over.
func (d *Daemon) trafficCheck(k *rotator.Key, q keyQuery) depCheck {
	return depCheck{kind: "traffic", name: fmt.Sprintf("traffic %s: %s query of key %s", q.name, q.what, k.Name),
		fix: fmt.Sprintf("check %s (URL, credentials) and the key's %s query: metric and label names must match a series (or set empty_is_zero on the source)",
			d.adapterPath("traffic", q.name), q.what),
		run: func(ctx context.Context) (string, bool, error) {
			tq := rotator.TrafficQuery{Key: k.Name, Query: q.query, Question: q.question, Since: time.Now().Add(-time.Hour)}
			gen := 0
			if creds, err := d.Store.Credentials(ctx, k.Name); err == nil {
				for _, c := range creds {
					if c.State == rotator.CredCurrent {
						tq.OldID, tq.OldName, gen = c.IssuerID, c.Name, c.Generation
					}
				}
			}
			if tq.OldName == "" {
				tq.OldName = rotator.CredentialName(k.Name, 1)
			}
			// The next rotation's new generation (at rest nobody holds it:
			// a source of consumer attestations counts every consumer).
			tq.NewName, tq.NewGeneration = rotator.CredentialName(k.Name, gen+1), gen+1
			c, checker := q.source.(rotator.Checker)
			if checker {
				if err := c.Check(ctx); err != nil {
					return "", false, err
				}
			}
			r, err := q.source.Unauthorized(ctx, tq)
			if err != nil && checker && rotator.ReasonOf(err) == rotator.ReasonTransient {
				// The source answers (Check); a rate source needs a second
				// reading before it has a rate.
				return "answers; the query: " + err.Error(), false, nil
			}
			if err != nil {
				return "", false, err
			}
			return fmt.Sprintf("answers: %g (%s)", r.Value, r.Detail), false, nil
		}}
}

func (d *Daemon) notifierCheck(name string) depCheck {
	n := d.built.notifiers[name]
	return depCheck{kind: "notifier", name: "notifier " + name,
		fix: fmt.Sprintf("check %s: its token is valid and the bot was invited to every channel it posts to", d.adapterPath("notifiers", name)),
		run: func(ctx context.Context) (string, bool, error) {
			if c, ok := n.(rotator.Checker); ok {
				return "answers; channels reachable", false, c.Check(ctx)
			}
			return "not checked: this notifier has no read-only call", true, nil
		}}
}

// adopts reports whether a sink is configured to take over targets that
// exist without rekey's managed-by marker.
func (d *Daemon) adopts(sink string) bool {
	for _, a := range d.Config.Sinks {
		if a.Name == sink {
			v, _ := a.Settings["adopt"].(bool)
			return v
		}
	}
	return false
}

// adapterPath is an adapter's YAML path: sinks[2] (vault).
func (d *Daemon) adapterPath(family, name string) string {
	var list []config.Adapter
	switch family {
	case "issuers":
		list = d.Config.Issuers
	case "sinks":
		list = d.Config.Sinks
	case "notifiers":
		list = d.Config.Notifiers
	case "traffic":
		list = d.Config.Traffic
	}
	for i, a := range list {
		if a.Name == name {
			return fmt.Sprintf("%s[%d] (%s %q)", family, i, a.Type, name)
		}
	}
	return family + " " + name
}

func sortedKeys[T any](m map[string]T) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
