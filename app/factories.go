package app

import (
	"log/slog"

	"github.com/rekeyhq/rekey/config"
	"github.com/rekeyhq/rekey/issuers/awsiam"
	issuerhttp "github.com/rekeyhq/rekey/issuers/http"
	"github.com/rekeyhq/rekey/issuers/manual"
	"github.com/rekeyhq/rekey/issuers/random"
	notifierlog "github.com/rekeyhq/rekey/notifiers/log"
	"github.com/rekeyhq/rekey/notifiers/slack"
	"github.com/rekeyhq/rekey/notifiers/webhook"
	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/sinks/awssm"
	"github.com/rekeyhq/rekey/sinks/file"
	"github.com/rekeyhq/rekey/sinks/vault"
	trafficiam "github.com/rekeyhq/rekey/traffic/awsiam"
	trafficconsumers "github.com/rekeyhq/rekey/traffic/consumers"
	"github.com/rekeyhq/rekey/traffic/fixed"
	trafficka "github.com/rekeyhq/rekey/traffic/kubeadapt"
	trafficprom "github.com/rekeyhq/rekey/traffic/prometheus"
)

// The factory maps: one explicit line per adapter type, the only place that
// knows them all. Adding an adapter = one package + one line here
// (TestEveryAdapterIsWired fails when a package is missing).
var (
	issuerFactories = map[string]factory[rotator.Issuer]{
		"random": adapter(random.DefaultConfig, func(c random.Config, l *slog.Logger) (rotator.Issuer, error) { return random.New(c, l) }),
		"http":   adapter(issuerhttp.DefaultConfig, func(c issuerhttp.Config, l *slog.Logger) (rotator.Issuer, error) { return issuerhttp.New(c, l) }),
		"manual": adapter(manual.DefaultConfig, func(c manual.Config, l *slog.Logger) (rotator.Issuer, error) { return manual.New(c, l) }),
		"awsiam": adapter(awsiam.DefaultConfig, func(c awsiam.Config, l *slog.Logger) (rotator.Issuer, error) { return awsiam.New(c, l) }),
	}
	sinkFactories = map[string]factory[rotator.Sink]{
		"file":  adapter(file.DefaultConfig, func(c file.Config, l *slog.Logger) (rotator.Sink, error) { return file.New(c, l) }),
		"vault": adapter(vault.DefaultConfig, func(c vault.Config, l *slog.Logger) (rotator.Sink, error) { return vault.New(c, l) }),
		"awssm": adapter(awssm.DefaultConfig, func(c awssm.Config, l *slog.Logger) (rotator.Sink, error) { return awssm.New(c, l) }),
	}
	notifierFactories = map[string]factory[rotator.Notifier]{
		"log":     adapter(notifierlog.DefaultConfig, func(c notifierlog.Config, l *slog.Logger) (rotator.Notifier, error) { return notifierlog.New(c, l) }),
		"webhook": adapter(webhook.DefaultConfig, func(c webhook.Config, l *slog.Logger) (rotator.Notifier, error) { return webhook.New(c, l) }),
		"slack": withDeps(slack.DefaultConfig, func(c slack.Config, d deps) (rotator.Notifier, error) {
			c.Name, c.Buttons = d.name, d.slackButtons[d.name]
			return slack.New(c, d.logger, d.store, d.store)
		}),
	}
	trafficFactories = map[string]factory[rotator.TrafficSource]{
		"fixed": adapter(fixed.DefaultConfig, func(c fixed.Config, _ *slog.Logger) (rotator.TrafficSource, error) { return fixed.New(c), nil }),
		"prometheus": adapter(trafficprom.DefaultConfig, func(c trafficprom.Config, l *slog.Logger) (rotator.TrafficSource, error) {
			return trafficprom.New(c, l)
		}),
		"kubeadapt": adapter(trafficka.DefaultConfig, func(c trafficka.Config, l *slog.Logger) (rotator.TrafficSource, error) { return trafficka.New(c, l) }),
		"awsiam":    adapter(trafficiam.DefaultConfig, func(c trafficiam.Config, l *slog.Logger) (rotator.TrafficSource, error) { return trafficiam.New(c, l) }),
		"consumers": withDeps(trafficconsumers.DefaultConfig, func(c trafficconsumers.Config, d deps) (rotator.TrafficSource, error) {
			return trafficconsumers.New(c, d.store, d.logger)
		}),
	}
)

// KnownTypes lists the adapter types this build offers, per family.
func KnownTypes() config.KnownTypes {
	return config.KnownTypes{
		config.FamilyIssuers:   keys(issuerFactories),
		config.FamilySinks:     keys(sinkFactories),
		config.FamilyNotifiers: keys(notifierFactories),
		config.FamilyTraffic:   keys(trafficFactories),
		config.FamilyWebhooks:  keys(webhookFactories),
	}
}
