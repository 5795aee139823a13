package app

import (
	"log/slog"
	"sort"

	"github.com/rekeyhq/rekey/config"
)

type validator interface{ Validate() error }

// factory decodes and checks an adapter's settings, and builds it.
type factory[T any] struct {
	check func(settings map[string]any, path string) error
	build func(settings map[string]any, path string, logger *slog.Logger) (T, error)
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
	decode := func(settings map[string]any, path string) (C, error) { return decodeSettings(def, settings, path) }
	return factory[T]{
		check: func(settings map[string]any, path string) error {
			_, err := decode(settings, path)
			return err
		},
		build: func(settings map[string]any, path string, logger *slog.Logger) (T, error) {
			var zero T
			cfg, err := decode(settings, path)
			if err != nil {
				return zero, err
			}
			return mk(cfg, logger)
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
