package app

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/rekeyhq/rekey/config"
	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/webhooks/departure"
	"github.com/rekeyhq/rekey/webhooks/exposure"
	"github.com/rekeyhq/rekey/webhooks/github"
)

// route is one inbound endpoint on the daemon's listener.
type route struct {
	pattern string
	handler http.Handler
}

// webhookFactory builds inbound adapters, which need the engine's Intake
// and the store's replay guard.
type webhookFactory struct {
	check func(settings map[string]any, path string) error
	build func(settings map[string]any, path string, logger *slog.Logger, intake rotator.Intake, guard rotator.ReplayGuard) ([]route, error)
}

func inbound[C validator](def func() C, mk func(C, rotator.Intake, rotator.ReplayGuard, *slog.Logger) ([]route, error)) webhookFactory {
	return webhookFactory{
		check: func(settings map[string]any, path string) error {
			_, err := decodeSettings(def, settings, path)
			return err
		},
		build: func(settings map[string]any, path string, l *slog.Logger, in rotator.Intake, g rotator.ReplayGuard) ([]route, error) {
			cfg, err := decodeSettings(def, settings, path)
			if err != nil {
				return nil, err
			}
			return mk(cfg, in, g, l)
		},
	}
}

// webhookFactories: one line per inbound adapter type.
var webhookFactories = map[string]webhookFactory{
	"exposure": inbound(exposure.DefaultConfig, func(c exposure.Config, in rotator.Intake, g rotator.ReplayGuard, l *slog.Logger) ([]route, error) {
		h, err := exposure.New(c, in, g, l)
		return []route{{exposure.Route, h}}, err
	}),
	"departure": inbound(departure.DefaultConfig, func(c departure.Config, in rotator.Intake, g rotator.ReplayGuard, l *slog.Logger) ([]route, error) {
		h, err := departure.New(c, in, g, l)
		return []route{{departure.Route, h}}, err
	}),
	"github": inbound(github.DefaultConfig, func(c github.Config, in rotator.Intake, g rotator.ReplayGuard, l *slog.Logger) ([]route, error) {
		h, err := github.New(c, in, g, l)
		if err != nil {
			return nil, err
		}
		return []route{{github.Route, h}, {github.AlertRoute, h.Alert()}}, nil
	}),
}

func buildWebhooks(list []config.Adapter, logger *slog.Logger, intake rotator.Intake, guard rotator.ReplayGuard) ([]route, error) {
	var out []route
	for i, a := range list {
		path := fmt.Sprintf("webhooks[%d]", i)
		rs, err := webhookFactories[a.Type].build(a.Settings, path, logger.With("adapter", a.Type, "name", a.Name), intake, guard)
		if err != nil {
			return nil, fmt.Errorf("%s (%s %q): %w", path, a.Type, a.Name, err)
		}
		out = append(out, rs...)
	}
	return out, nil
}
