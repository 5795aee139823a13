package app

import (
	"log/slog"
	"sort"

	"github.com/rekeyhq/rekey/config"
	"github.com/rekeyhq/rekey/rotator"
)

type validator interface{ Validate() error }

// targetValidator is the optional capability of a sink's configuration to
// check a key's binding to it (the binding's path and params) before
// anything runs: `rekey validate` reports a traversal with its YAML path.
type targetValidator interface {
	ValidateTarget(path string, params map[string]string) error
}

// factory decodes and checks an adapter's settings, and builds it.
type factory[T any] struct {
	check func(settings map[string]any, path string) error
	build func(settings map[string]any, path string, d deps) (T, error)
	// targetCheck returns the check of a key's binding against the
	// adapter's settings, decoded once for all the keys bound to it (nil
	// when the adapter has no such check or its settings are already
	// reported as wrong).
	targetCheck func(settings map[string]any) func(path string, params map[string]string) error
	// answers reports which drain gate questions a traffic source answers
	// for a key with the given queries (nil when the settings do not
	// decode, or the adapter is not a traffic source).
	answers func(settings map[string]any, key map[rotator.Question]string) []rotator.Question
	// checkQuery checks a key's query for a traffic source (nil error when
	// the source takes no query template).
	checkQuery func(query string) error
}

// answerer is the capability of a traffic source's configuration to say
// which questions of the drain gate it can answer.
type answerer interface {
	Answers(key map[rotator.Question]string) []rotator.Question
}

// queryValidator is the optional capability of a traffic source's
// configuration to check a key's query template (its fields, its escaping).
type queryValidator interface{ ValidateQuery(q string) error }

// deps is what an adapter may be built with; most take only the logger.
type deps struct {
	logger *slog.Logger
	name   string // the adapter's configured name
	store  Store
	// slackButtons names the slack notifiers whose button clicks a slack
	// webhook receives: only those post Approve / Deny buttons.
	slackButtons map[string]bool
}

// decodeSettings decodes an adapter's settings over its defaults strictly
// and validates them, with YAML-path errors.
func decodeSettings[C validator](def func() C, settings map[string]any, path string) (C, error) {
	cfg := def()
	if settings == nil {
		settings = map[string]any{}
	}
	if err := config.Decode(settings, &cfg, path); err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		var es config.Errors
		es.AddErr(path, err)
		return cfg, es
	}
	return cfg, nil
}

// adapter makes a factory from an adapter package's DefaultConfig and New.
func adapter[C validator, T any](def func() C, mk func(C, *slog.Logger) (T, error)) factory[T] {
	return withDeps(def, func(c C, d deps) (T, error) { return mk(c, d.logger) })
}

// withDeps makes a factory for adapters that need more than a logger.
func withDeps[C validator, T any](def func() C, mk func(C, deps) (T, error)) factory[T] {
	return factory[T]{
		check: func(settings map[string]any, path string) error {
			_, err := decodeSettings(def, settings, path)
			return err
		},
		build: func(settings map[string]any, path string, d deps) (T, error) {
			var zero T
			cfg, err := decodeSettings(def, settings, path)
			if err != nil {
				return zero, err
			}
			return mk(cfg, d)
		},
		targetCheck: func(settings map[string]any) func(path string, params map[string]string) error {
			// The settings' own problems are reported by check; the
			// bindings are checked even then, so that every problem is
			// reported at once.
			cfg := def()
			if settings == nil {
				settings = map[string]any{}
			}
			if err := config.Decode(settings, &cfg, ""); err != nil {
				return nil
			}
			if tv, ok := any(cfg).(targetValidator); ok {
				return tv.ValidateTarget
			}
			return nil
		},
		answers: func(settings map[string]any, key map[rotator.Question]string) []rotator.Question {
			cfg, err := decodeSettings(def, settings, "")
			if err != nil {
				return nil
			}
			if a, ok := any(cfg).(answerer); ok {
				return a.Answers(key)
			}
			return nil
		},
		checkQuery: func(q string) error {
			if qv, ok := any(def()).(queryValidator); ok {
				return qv.ValidateQuery(q)
			}
			return nil
		},
	}
}

func keys[T any](m map[string]T) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
