package app

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/rekeyhq/rekey/auth"
	"github.com/rekeyhq/rekey/config"
)

// Validate checks a loaded configuration completely: the config package's
// own checks plus every adapter's settings, decoded strictly by the adapter.
// It builds nothing and contacts nothing.
func Validate(cfg *config.Config) config.Errors {
	errs := cfg.Validate(KnownTypes())
	checkFamily(&errs, "issuers", cfg.Issuers, issuerFactories)
	checkFamily(&errs, "sinks", cfg.Sinks, sinkFactories)
	checkFamily(&errs, "notifiers", cfg.Notifiers, notifierFactories)
	checkFamily(&errs, "traffic", cfg.Traffic, trafficFactories)
	slackAt := -1
	for i, n := range cfg.Notifiers {
		if n.Type == "slack" {
			if slackAt >= 0 {
				errs.Add(fmt.Sprintf("notifiers[%d].type", i), "a second slack notifier (also notifiers[%d]); one Slack app serves one interactivity endpoint — route channels with `channels`", slackAt)
			}
			slackAt = i
		}
	}
	for i, a := range cfg.Webhooks {
		if f, ok := webhookFactories[a.Type]; ok {
			if err := f.check(a.Settings, fmt.Sprintf("webhooks[%d]", i)); err != nil {
				errs.AddErr("", err)
			}
		}
	}
	checkSlackWebhook(&errs, cfg)
	checkBindings(&errs, cfg)
	checkGates(&errs, cfg)
	checkQueries(&errs, cfg)
	checkIdentities(&errs, cfg)
	return errs
}

// checkIdentities refuses an auth.identities alias that maps a person to
// an identity no person may hold (auth.Reserved): at run time such a
// mapping would make every decision through it be refused.
func checkIdentities(errs *config.Errors, cfg *config.Config) {
	for _, alias := range slices.Sorted(maps.Keys(cfg.Auth.Identities)) {
		if err := auth.Reserved(cfg.Auth.Identities[alias]); err != nil {
			errs.Add("auth.identities."+alias, "%v", err)
		}
	}
}

// checkQueries lets each traffic source check the query templates keys
// give it (drain.query, policies.unauthorized.query): a field that does
// not exist ({{promql .Kye}}) is a configuration error here, not a drain
// gate that fails after the cut-over.
func checkQueries(errs *config.Errors, cfg *config.Config) {
	types := map[string]string{}
	for _, s := range cfg.Traffic {
		types[s.Name] = s.Type
	}
	check := func(path, source, query string) {
		f, ok := trafficFactories[types[source]]
		if !ok || f.checkQuery == nil || query == "" {
			return
		}
		if err := f.checkQuery(query); err != nil {
			errs.Add(path, "%v", err)
		}
	}
	drainSrc, policySrc := "", ""
	if d := cfg.Defaults.Drain; d != nil {
		drainSrc = d.Source
	}
	if p := cfg.Defaults.Policies; p != nil && p.Unauthorized != nil {
		policySrc = p.Unauthorized.Source
	}
	drain := func(path, src string, d *config.Drain) {
		if src == "" {
			src = drainSrc
		}
		check(path+".query", src, d.Query)
		check(path+".old_key_query", src, d.OldKeyQuery)
	}
	unauthorized := func(path string, u *config.UnauthorizedPolicy) {
		src := u.Source
		if src == "" {
			src = policySrc
		}
		check(path+".query", src, u.Query)
	}
	for i, k := range cfg.Keys {
		if d := k.Drain; d != nil {
			drain(fmt.Sprintf("keys[%d].drain", i), d.Source, d)
		}
		if p := k.Policies; p != nil && p.Unauthorized != nil {
			unauthorized(fmt.Sprintf("keys[%d].policies.unauthorized", i), p.Unauthorized)
		}
	}
	if d := cfg.Defaults.Drain; d != nil {
		drain("defaults.drain", d.Source, d)
	}
	if p := cfg.Defaults.Policies; p != nil && p.Unauthorized != nil {
		unauthorized("defaults.policies.unauthorized", p.Unauthorized)
	}
}

// checkBindings lets each sink check the keys' bindings to it (a file
// sink's path, a Vault mount and secret path), so that a path leaving its
// root is refused here, with its YAML path, and never reaches a request.
func checkBindings(errs *config.Errors, cfg *config.Config) {
	// Each sink's settings are decoded once, not once per binding.
	checks := map[string]func(path string, params map[string]string) error{}
	for _, s := range cfg.Sinks { // of a duplicate name (an error already), the last counts
		checks[s.Name] = nil
		if f, ok := sinkFactories[s.Type]; ok && f.targetCheck != nil {
			checks[s.Name] = f.targetCheck(s.Settings)
		}
	}
	for i, k := range cfg.Keys {
		for j, b := range k.Sinks {
			check := checks[b.Sink]
			if check == nil {
				continue // an unknown sink is reported by config.Validate
			}
			if err := check(b.Path, b.Params); err != nil {
				errs.AddErr(fmt.Sprintf("keys[%d].sinks[%d]", i, j), err)
			}
		}
	}
}

// checkSlackWebhook checks that a slack webhook names a slack notifier: the
// one whose buttons it serves and whose bot token it borrows.
func checkSlackWebhook(errs *config.Errors, cfg *config.Config) {
	var slackNotifiers []string
	types := map[string]string{}
	for _, n := range cfg.Notifiers {
		types[n.Name] = n.Type
		if n.Type == "slack" {
			slackNotifiers = append(slackNotifiers, n.Name)
		}
	}
	for name, i := range slackWebhooks(cfg.Webhooks) {
		path := fmt.Sprintf("webhooks[%d].notifier", i)
		switch t, ok := types[name]; {
		case !ok && len(slackNotifiers) == 0:
			errs.Add(path, "unknown notifier %q: configure a slack notifier (its buttons are what this webhook receives)", name)
		case !ok:
			errs.Add(path, "unknown notifier %q (slack notifiers: %s)", name, strings.Join(slackNotifiers, ", "))
		case t != "slack":
			errs.Add(path, "notifier %q is a %s notifier; a slack webhook serves the buttons of a slack notifier", name, t)
		}
	}
}

func checkFamily[T any](errs *config.Errors, family string, list []config.Adapter, fs map[string]factory[T]) {
	for i, a := range list {
		f, ok := fs[a.Type]
		if !ok {
			continue // reported by config.Validate
		}
		if err := f.check(a.Settings, fmt.Sprintf("%s[%d]", family, i)); err != nil {
			errs.AddErr("", err)
		}
	}
}

// GateNotes are validate's statement, per key, of what its drain gate
// proves, and the warnings of gates that leave slow consumers unprotected
// (they do not fail validation).
func GateNotes(cfg *config.Config) (notes, warnings []string) {
	for _, g := range GateProofs(cfg) {
		notes = append(notes, fmt.Sprintf("drain gate of %s: %s", g.Key, g.Proves))
		if g.Warning != "" {
			warnings = append(warnings, g.Warning)
		}
	}
	return notes, warnings
}

// Warnings are what a valid configuration will not do as written: a key
// with verify: true whose issuer cannot verify (awsiam), or has no verify
// probe configured (http, manual), is delivered unverified.
func Warnings(cfg *config.Config) []string {
	out := cfg.Warnings()
	issuers := map[string]config.Adapter{}
	for _, a := range cfg.Issuers {
		issuers[a.Name] = a
	}
	for i, k := range cfg.Keys {
		eff := cfg.Effective(k)
		if eff.Verify == nil || !*eff.Verify {
			continue
		}
		a, ok := issuers[k.Issuer]
		if !ok {
			continue // an error already
		}
		if why := cannotVerify(a); why != "" {
			out = append(out, fmt.Sprintf("keys[%d].verify: true, but issuer %s (%s) %s: key %s is delivered unverified", i, a.Name, a.Type, why, k.Name))
		}
	}
	return out
}

// cannotVerify says why an issuer cannot probe a new key, or "".
func cannotVerify(a config.Adapter) string {
	switch a.Type {
	case "random":
		return ""
	case "http", "manual":
		if v, ok := a.Settings["verify"]; !ok || v == nil {
			return "has no verify probe configured"
		}
		return ""
	case "awsiam":
		return "cannot verify a key (IAM offers no probe)"
	}
	return "cannot verify a key"
}
