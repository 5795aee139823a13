package slack

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/rekeyhq/rekey/internal/secretref"
	"github.com/rekeyhq/rekey/rotator"
)

// Defaults of Config.
const (
	DefaultName    = "slack"
	DefaultAPIURL  = "https://slack.com/api/"
	DefaultTimeout = 10 * time.Second
)

// Config of the Slack notifier.
//
//	notifiers:
//	  - name: slack
//	    type: slack
//	    token_env: SLACK_BOT_TOKEN               # or token_file; required (xoxb-…)
//	    channel: "#rekey"                        # default channel
//	    channels:                                # first match wins, before the default
//	      - {match: "payments-*", channel: "#payments-oncall", min_severity: warning}
//	      - {triggers: [exposure, unauthorized], channel: "#security"}
//	    oncall_group: S0123ONCALL                # user group mentioned on failures/escalations/emergencies
//	    mention_owners: true                     # default
//	    timeout: 10s                             # default, per Slack API call
//
// Approve / Deny buttons are posted only when a `slack` webhook
// (webhooks/slack) receives their clicks for this notifier.
type Config struct {
	// Name is the configured notifier name; app sets it. It namespaces what
	// the notifier remembers in the StateStore. Default "slack".
	Name string `koanf:"-"`

	// TokenEnv / TokenFile name the bot token (xoxb-…). Required.
	TokenEnv  string `koanf:"token_env"`
	TokenFile string `koanf:"token_file"`
	// Buttons posts Approve / Deny buttons on messages waiting for a
	// decision; app sets it when a slack webhook handles this notifier's
	// clicks, so no button is ever posted that nothing would receive.
	Buttons bool `koanf:"-"`
	// APIURL overrides Slack's Web API base URL (tests).
	APIURL string `koanf:"api_url"`

	// Channel receives what no rule in Channels routes elsewhere.
	Channel string `koanf:"channel"`
	// Channels are routing rules, tried in order; the first that matches an
	// event picks its channel.
	Channels []Route `koanf:"channels"`

	// OncallGroup is a user group id (S…) mentioned on failures,
	// escalations and emergencies.
	OncallGroup string `koanf:"oncall_group"`
	// MentionOwners mentions the key's owners (looked up by email) on
	// failures, escalations and emergencies.
	MentionOwners bool `koanf:"mention_owners"`

	// Timeout bounds each Slack API call and the handling of one click.
	Timeout time.Duration `koanf:"timeout"`
}

// Route sends matching events to a channel. Every set condition must hold.
type Route struct {
	// Match is a glob (path.Match) on the key name; empty matches any key.
	Match string `koanf:"match"`
	// Channel is a channel name (#ops) or id (C…). Required.
	Channel string `koanf:"channel"`
	// MinSeverity drops events below it from this rule: info | warning | critical.
	MinSeverity string `koanf:"min_severity"`
	// Triggers restricts the rule to rotations started by these triggers.
	Triggers []string `koanf:"triggers"`
	// Mode restricts the rule to staged or emergency rotations.
	Mode string `koanf:"mode"`
}

// DefaultConfig returns the defaults, applied before the user's YAML.
func DefaultConfig() Config {
	return Config{APIURL: DefaultAPIURL, MentionOwners: true, Timeout: DefaultTimeout}
}

// movedToWebhook is what a configuration that still sets an interactivity
// field on the notifier reads: ignoring the field would silently remove
// the buttons.
const movedToWebhook = "button clicks are received by the slack webhook now: move this setting to " +
	"`webhooks: [{type: slack, notifier: <this notifier's name>, …}]` (see docs/SLACK.md)"

// RetiredFields names the settings that moved to the slack webhook
// (config.Retired): a configuration that still sets one is refused at its
// YAML path with movedToWebhook.
func (Config) RetiredFields() map[string]string {
	m := map[string]string{}
	for _, f := range []string{"signing_secret", "signing_secret_env", "signing_secret_file", "app_token", "app_token_env",
		"app_token_file", "mode", "approvers"} {
		m[f] = movedToWebhook
	}
	return m
}

// Token is the reference to the bot token.
func (c Config) Token() secretref.Ref { return secretref.Ref{Env: c.TokenEnv, File: c.TokenFile} }

var (
	slackIDRe    = regexp.MustCompile(`^[A-Z0-9]{2,32}$`)
	channelIDRe  = regexp.MustCompile(`^[CGD][A-Z0-9]{2,32}$`)
	channelNamRe = regexp.MustCompile(`^#[a-z0-9][a-z0-9._-]{0,79}$`)
)

var severities = map[string]int{
	string(rotator.SeverityInfo):     0,
	string(rotator.SeverityWarning):  1,
	string(rotator.SeverityCritical): 2,
}

var triggers = map[string]bool{
	string(rotator.TriggerAge): true, string(rotator.TriggerDeparture): true, string(rotator.TriggerExposure): true,
	string(rotator.TriggerUnauthorized): true, string(rotator.TriggerDecommission): true,
	string(rotator.TriggerManual): true, string(rotator.TriggerBootstrap): true,
}

// Validate reports every problem, each prefixed with its field name.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if err := c.Token().Validate("token", true); err != nil {
		errs = append(errs, err)
	}
	if u, err := url.Parse(c.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		add("api_url: must be an absolute http(s) URL")
	} else if u.User != nil || u.RawQuery != "" {
		add("api_url: must not carry userinfo or a query")
	}
	if c.Channel == "" && len(c.Channels) == 0 {
		add("channel: required (or channels)")
	} else if c.Channel != "" && !validChannel(c.Channel) {
		add("channel: %q is neither a #channel-name nor a channel id", c.Channel)
	}
	for i, r := range c.Channels {
		p := fmt.Sprintf("channels[%d]", i)
		if r.Channel == "" {
			add("%s.channel: required", p)
		} else if !validChannel(r.Channel) {
			add("%s.channel: %q is neither a #channel-name nor a channel id", p, r.Channel)
		}
		if _, err := path.Match(r.Match, ""); err != nil {
			add("%s.match: bad glob %q", p, r.Match)
		}
		if _, ok := severities[r.MinSeverity]; r.MinSeverity != "" && !ok {
			add("%s.min_severity: must be info, warning or critical, not %q", p, r.MinSeverity)
		}
		for _, t := range r.Triggers {
			if !triggers[t] {
				add("%s.triggers: unknown trigger %q", p, t)
			}
		}
		if r.Mode != "" && r.Mode != string(rotator.ModeStaged) && r.Mode != string(rotator.ModeEmergency) {
			add("%s.mode: must be staged or emergency, not %q", p, r.Mode)
		}
	}
	if c.OncallGroup != "" && !slackIDRe.MatchString(c.OncallGroup) {
		add("oncall_group: must be a user group id such as S0123ABCD, not %q", c.OncallGroup)
	}
	if c.Timeout <= 0 {
		add("timeout: must be positive")
	}
	return errors.Join(errs...)
}

func validChannel(s string) bool {
	return channelIDRe.MatchString(s) || channelNamRe.MatchString(s)
}

// apiURL returns the API base with a trailing slash, as slack-go expects.
func (c Config) apiURL() string {
	if strings.HasSuffix(c.APIURL, "/") {
		return c.APIURL
	}
	return c.APIURL + "/"
}
