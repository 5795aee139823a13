package app

import (
	"fmt"
	"slices"

	"github.com/rekeyhq/rekey/config"
	"github.com/rekeyhq/rekey/rotator"
)

// gatePlan is a key's drain gate worked out from the configuration: what
// each source answers, which questions are asked of which source, and the
// statement of what it proves.
type gatePlan struct {
	path   string // YAML path of the drain block the key uses
	spec   rotator.GateSpec
	checks []gateCheck
	errs   config.Errors
}

type gateCheck struct {
	question rotator.Question
	source   string
	query    string
}

// fixedName names the built-in source of a gate that names none.
const fixedName = "fixed"

// builtinSources are the sources of every gate that names none (capped:
// an append copies).
var builtinSources = []rotator.GateSource{{Name: fixedName, Type: fixedName}}[:1:1]

// gatePlanner works out the keys' drain gates. The keys that have no
// drain block of their own share defaults.drain, so they share one plan
// (its slices are read only, capped so that an append copies): 100,000
// keys need one, not 100,000.
type gatePlanner struct {
	cfg *config.Config
	def *gatePlan // the plan of defaults.drain, once worked out
}

// plan is planGate(cfg, i, kc).
func (p *gatePlanner) plan(i int, kc config.Key) gatePlan {
	if kc.Drain != nil {
		return planGate(p.cfg, i, kc)
	}
	if p.def == nil {
		g := planGate(p.cfg, i, kc)
		g.spec.Sources = slices.Clip(g.spec.Sources)
		g.spec.Require = slices.Clip(g.spec.Require)
		g.checks = slices.Clip(g.checks)
		g.errs = slices.Clip(g.errs)
		p.def = &g
	}
	g := *p.def
	g.spec.Key = kc.Name
	return g
}

// planGate works out the drain gate of key kc (index i) from the
// configuration alone: it builds nothing and contacts nothing. Of the
// key, it reads only its name and its drain block (gatePlanner relies on
// it).
func planGate(cfg *config.Config, i int, kc config.Key) gatePlan {
	eff := cfg.Effective(kc)
	g := gatePlan{path: fmt.Sprintf("keys[%d].drain", i)}
	if kc.Drain == nil {
		g.path = "defaults.drain"
	}
	d := config.Drain{}
	if eff.Drain != nil {
		d = *eff.Drain
	}
	g.spec = rotator.GateSpec{Key: kc.Name, QuietPeriod: d.QuietPeriod, MaxWait: d.MaxWait, ReloadWithin: d.ConsumersReloadWithin}
	queries := map[rotator.Question]string{rotator.OldKeyUse: d.OldKeyQuery, rotator.NewKeyFailures: d.Query}
	adapters := map[string]config.Adapter{fixedName: {Name: fixedName, Type: fixedName}} // built in, unless declared
	for _, a := range cfg.Traffic {
		adapters[a.Name] = a
	}
	names := d.SourceNames()
	if len(names) == 0 {
		g.spec.Sources = builtinSources // shared, read only: one slice, not one per key
	}
	for _, name := range names {
		a, ok := adapters[name]
		if !ok {
			continue // reported by config.Validate
		}
		src := rotator.GateSource{Name: name, Type: a.Type}
		if f, ok := trafficFactories[a.Type]; ok && f.answers != nil {
			src.Answers = f.answers(a.Settings, queries)
		}
		if len(src.Answers) == 0 && a.Type != fixedName {
			// A source that answers nothing would make the gate a timer
			// without anyone noticing (a prometheus source with no query).
			field := ".source"
			if len(d.Sources) > 0 {
				field = fmt.Sprintf(".sources[%d]", slices.Index(d.Sources, name))
			}
			g.errs.Add(g.path+field, "%s (%s) answers no question of the drain gate for this key: give it a query (drain.query for new_key_failures, drain.old_key_query for old_key_use) or use type fixed on purpose", name, a.Type)
		}
		g.spec.Sources = append(g.spec.Sources, src)
	}
	answered := func(q rotator.Question) bool {
		return slices.ContainsFunc(g.spec.Sources, func(s rotator.GateSource) bool { return slices.Contains(s.Answers, q) })
	}
	if len(d.Require) > 0 {
		for j, r := range d.Require {
			q := rotator.Question(r)
			if !q.Known() {
				continue // reported by config.Validate
			}
			if !answered(q) {
				g.errs.Add(fmt.Sprintf("%s.require[%d]", g.path, j), "%s: no source of this gate can answer it (%s)", q, g.describeSources())
				continue
			}
			if !slices.Contains(g.spec.Require, q) {
				g.spec.Require = append(g.spec.Require, q)
			}
		}
	} else {
		for _, q := range rotator.Questions {
			if answered(q) {
				g.spec.Require = append(g.spec.Require, q)
			}
		}
	}
	for _, q := range g.spec.Require {
		for _, s := range g.spec.Sources {
			if slices.Contains(s.Answers, q) {
				g.checks = append(g.checks, gateCheck{question: q, source: s.Name, query: queries[q]})
			}
		}
	}
	if eq := g.spec.EffectiveQuiet(); d.MaxWait > 0 && d.MaxWait < eq && eq > d.QuietPeriod {
		g.errs.Add(g.path+".max_wait", "must be at least consumers_reload_within (%s): the gate cannot see old-key use, so it waits that long", eq)
	}
	return g
}

// describeSources says what each source of the gate answers, for errors.
func (g gatePlan) describeSources() string {
	var out string
	for i, s := range g.spec.Sources {
		if i > 0 {
			out += "; "
		}
		what := "nothing"
		if len(s.Answers) > 0 {
			what = fmt.Sprint(s.Answers)
		}
		out += fmt.Sprintf("%s (%s) answers %s", s.Name, s.Type, what)
	}
	if s := g.spec.Sources; len(s) == 1 && s[0].Type == "prometheus" {
		out += ": set drain.old_key_query (or the source's old_key_query) for old_key_use"
	}
	return out
}

// GateProofs states, per key, what its drain gate proves and what it
// cannot see — validate prints it, doctor and describe can show it; each
// rotation's started notification carries the same text.
func GateProofs(cfg *config.Config) []rotator.GateProof {
	out := make([]rotator.GateProof, 0, len(cfg.Keys))
	gp := gatePlanner{cfg: cfg}
	for i, kc := range cfg.Keys {
		out = append(out, rotator.ProveGate(gp.plan(i, kc).spec))
	}
	return out
}

// checkGates reports the gates' configuration errors (a required question
// no source answers, a max_wait shorter than the declared reload
// interval), once per drain block.
func checkGates(errs *config.Errors, cfg *config.Config) {
	seen := map[string]bool{}
	gp := gatePlanner{cfg: cfg}
	for i, kc := range cfg.Keys {
		for _, e := range gp.plan(i, kc).errs {
			if !seen[e.Error()] {
				seen[e.Error()] = true
				*errs = append(*errs, e)
			}
		}
	}
}

// drainPolicy builds the key's drain policy from its plan and the built
// traffic sources.
func drainPolicy(g gatePlan, eff config.KeySettings, traffic map[string]rotator.TrafficSource) rotator.DrainPolicy {
	p := rotator.DrainPolicy{Sources: g.spec.Sources, ReloadWithin: g.spec.ReloadWithin}
	p.Source, p.SourceName = builtinFixed, fixedName
	if dr := eff.Drain; dr != nil {
		if names := dr.SourceNames(); len(names) > 0 {
			p.Source, p.SourceName = traffic[names[0]], names[0]
		}
		p.Query, p.QuietPeriod, p.MaxWait, p.PollInterval = dr.Query, dr.QuietPeriod, dr.MaxWait, dr.PollInterval
	}
	for _, c := range g.checks {
		p.Checks = append(p.Checks, rotator.DrainCheck{Question: c.question, Source: traffic[c.source], SourceName: c.source, Query: c.query})
	}
	return p
}
