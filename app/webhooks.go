package app

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/rekeyhq/rekey/config"
	notifierslack "github.com/rekeyhq/rekey/notifiers/slack"
	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/webhooks/consumer"
	"github.com/rekeyhq/rekey/webhooks/departure"
	"github.com/rekeyhq/rekey/webhooks/exposure"
	"github.com/rekeyhq/rekey/webhooks/github"
	"github.com/rekeyhq/rekey/webhooks/slack"
)

// route is one inbound endpoint on the daemon's listener.
type route struct {
	pattern string
	handler http.Handler
}

// hookDeps is what inbound adapters are built with. They are built after
// the engine, so they take it directly.
type hookDeps struct {
	logger    *slog.Logger
	engine    *rotator.Engine
	store     Store
	notifiers map[string]rotator.Notifier
	// decider records approvals with canonical identities.
	decider rotator.Decider
	// name is the webhook's configured name.
	name string
}

// webhookFactory decodes and checks an inbound adapter's settings, and
// builds its routes.
type webhookFactory struct {
	check func(settings map[string]any, path string) error
	build func(settings map[string]any, path string, d hookDeps) ([]route, error)
}

// hook makes a webhookFactory from an inbound package's DefaultConfig and a
// function building its routes.
func hook[C validator](def func() C, mk func(C, hookDeps) ([]route, error)) webhookFactory {
	return webhookFactory{
		check: func(settings map[string]any, path string) error {
			_, err := decodeSettings(def, settings, path)
			return err
		},
		build: func(settings map[string]any, path string, d hookDeps) ([]route, error) {
			cfg, err := decodeSettings(def, settings, path)
			if err != nil {
				return nil, err
			}
			return mk(cfg, d)
		},
	}
}

// webhookFactories: one line per inbound adapter type.
var webhookFactories = map[string]webhookFactory{
	"exposure": hook(exposure.DefaultConfig, func(c exposure.Config, d hookDeps) ([]route, error) {
		h, err := exposure.New(c, d.engine, d.store, d.logger)
		return []route{{exposure.Route, h}}, err
	}),
	"consumer": hook(consumer.DefaultConfig, func(c consumer.Config, d hookDeps) ([]route, error) {
		known := func(key string) bool { _, ok := d.engine.Key(key); return ok }
		h, err := consumer.New(c, d.name, known, d.store, d.store, d.store, d.logger)
		return []route{{consumer.Route, h}}, err
	}),
	"departure": hook(departure.DefaultConfig, func(c departure.Config, d hookDeps) ([]route, error) {
		h, err := departure.New(c, d.name, d.engine, d.store, d.logger)
		return []route{{departure.Route, h}}, err
	}),
	"github": hook(github.DefaultConfig, func(c github.Config, d hookDeps) ([]route, error) {
		h, err := github.New(c, d.engine, d.store, d.logger)
		if err != nil {
			return nil, err
		}
		return []route{{github.Route, h}, {github.AlertRoute, h.Alert()}}, nil
	}),
	"slack": hook(slack.DefaultConfig, func(c slack.Config, d hookDeps) ([]route, error) {
		n, ok := d.notifiers[c.Notifier].(*notifierslack.Notifier)
		if !ok { // Validate reports it with its path first
			return nil, fmt.Errorf("notifier: %q is not a slack notifier", c.Notifier)
		}
		h, err := slack.New(c, n.Client(), n, d.decider, d.store, d.store, d.logger)
		return []route{{slack.Route, h}}, err
	}),
}

func buildWebhooks(list []config.Adapter, d hookDeps) ([]route, error) {
	var out []route
	logger := d.logger
	for i, a := range list {
		path := fmt.Sprintf("webhooks[%d]", i)
		d.logger = logger.With("adapter", a.Type, "name", a.Name)
		d.name = a.Name
		rs, err := webhookFactories[a.Type].build(a.Settings, path, d)
		if err != nil {
			return nil, fmt.Errorf("%s (%s %q): %w", path, a.Type, a.Name, err)
		}
		out = append(out, rs...)
	}
	return out, nil
}

// slackWebhooks maps each slack notifier named by a slack webhook to that
// webhook's index in list: those notifiers post buttons. Settings that do
// not decode are skipped (Validate reports them).
func slackWebhooks(list []config.Adapter) map[string]int {
	out := map[string]int{}
	for i, a := range list {
		if a.Type != "slack" {
			continue
		}
		if c, err := decodeSettings(slack.DefaultConfig, a.Settings, fmt.Sprintf("webhooks[%d]", i)); err == nil {
			out[c.Notifier] = i
		}
	}
	return out
}
