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
	DefaultMode    = ModeHTTP
	DefaultAPIURL  = "https://slack.com/api/"
	DefaultTimeout = 10 * time.Second
)

// Transports for interactivity (button clicks).
const (
	ModeHTTP   = "http"   // Slack POSTs to /v1/slack/interactions (Interactions)
	ModeSocket = "socket" // rekey dials Slack over Socket Mode (Start)
)

// Config of the Slack notifier.
//
//	notifiers:
//	  - name: slack
//	    type: slack
//	    token_env: SLACK_BOT_TOKEN               # or token_file; required (xoxb-…)
//	    signing_secret_env: SLACK_SIGNING_SECRET # or _file; mode http: enables Approve/Deny buttons
//	    mode: http                               # default; or socket (needs app_token_env/_file)
//	    # app_token_env: SLACK_APP_TOKEN         # mode socket only (xapp-…)
//	    channel: "#rekey"                        # default channel
//	    channels:                                # first match wins, before the default
//	      - {match: "payments-*", channel: "#payments-oncall", min_severity: warning}
//	      - {triggers: [exposure, unauthorized], channel: "#security"}
//	    oncall_group: S0123ONCALL                # user group mentioned on failures/escalations/emergencies
//	    mention_owners: true                     # default
//	    approvers:                               # who may click Approve/Deny (checked at click time)
//	      user_ids: [U0123ANA]
//	      user_groups: [S0456SECOPS]
//	    timeout: 10s                             # default, per Slack API call
type Config struct {
	// Name is the configured notifier name; app sets it. It namespaces what
	// the notifier remembers in the StateStore. Default "slack".
	Name string `koanf:"-"`

	// TokenEnv / TokenFile name the bot token (xoxb-…). Required.
	TokenEnv  string `koanf:"token_env"`
	TokenFile string `koanf:"token_file"`
	// SigningSecretEnv / SigningSecretFile name the app's signing secret,
	// which authenticates interaction requests in mode http. Without it the
	// notifier posts no buttons and Interactions answers 404.
	SigningSecretEnv  string `koanf:"signing_secret_env"`
	SigningSecretFile string `koanf:"signing_secret_file"`
	// AppTokenEnv / AppTokenFile name the app-level token (xapp-…,
	// connections:write) for mode socket.
	AppTokenEnv  string `koanf:"app_token_env"`
	AppTokenFile string `koanf:"app_token_file"`
	// Mode is the interactivity transport: http (default) or socket.
	Mode string `koanf:"mode"`
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

	// Approvers may decide approval gates from Slack. Required when
	// interactivity is enabled; the key's own approval policy still applies.
	Approvers Approvers `koanf:"approvers"`

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

// Approvers lists who may click Approve / Deny.
type Approvers struct {
	// UserIDs are Slack user ids (U…/W…).
	UserIDs []string `koanf:"user_ids"`
	// UserGroups are user group ids (S…); membership is read at click time.
	UserGroups []string `koanf:"user_groups"`
}

// DefaultConfig returns the defaults, applied before the user's YAML.
func DefaultConfig() Config {
	return Config{Mode: DefaultMode, APIURL: DefaultAPIURL, MentionOwners: true, Timeout: DefaultTimeout}
}

// Token is the reference to the bot token.
func (c Config) Token() secretref.Ref { return secretref.Ref{Env: c.TokenEnv, File: c.TokenFile} }

// SigningSecret is the reference to the signing secret.
func (c Config) SigningSecret() secretref.Ref {
	return secretref.Ref{Env: c.SigningSecretEnv, File: c.SigningSecretFile}
}

// AppToken is the reference to the app-level token.
func (c Config) AppToken() secretref.Ref {
	return secretref.Ref{Env: c.AppTokenEnv, File: c.AppTokenFile}
}

// Interactive reports whether Approve/Deny buttons are enabled.
func (c Config) Interactive() bool {
	if c.Mode == ModeSocket {
		return !c.AppToken().IsZero()
	}
	return !c.SigningSecret().IsZero()
}

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
	if err := c.SigningSecret().Validate("signing_secret", false); err != nil {
		errs = append(errs, err)
	}
	if err := c.AppToken().Validate("app_token", c.Mode == ModeSocket); err != nil {
		errs = append(errs, err)
	}
	switch c.Mode {
	case ModeHTTP:
		if !c.AppToken().IsZero() {
			add("app_token_env: only used with mode: socket")
		}
	case ModeSocket:
	default:
		add("mode: must be http or socket, not %q", c.Mode)
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
	for i, id := range c.Approvers.UserIDs {
		if !slackIDRe.MatchString(id) {
			add("approvers.user_ids[%d]: must be a Slack user id such as U0123ABCD, not %q", i, id)
		}
	}
	for i, id := range c.Approvers.UserGroups {
		if !slackIDRe.MatchString(id) {
			add("approvers.user_groups[%d]: must be a user group id such as S0123ABCD, not %q", i, id)
		}
	}
	if c.Interactive() && len(c.Approvers.UserIDs) == 0 && len(c.Approvers.UserGroups) == 0 {
		add("approvers: user_ids or user_groups required when interactivity is enabled (signing_secret or mode: socket)")
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
