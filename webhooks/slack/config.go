package slack

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/rekeyhq/rekey/internal/secretref"
)

// Defaults of Config.
const (
	DefaultNotifier = "slack"
	DefaultMode     = ModeHTTP
	DefaultAPIURL   = "https://slack.com/api/"
	DefaultTimeout  = 10 * time.Second
)

// Transports of the clicks.
const (
	ModeHTTP   = "http"   // Slack POSTs to /v1/slack/interactions (ServeHTTP)
	ModeSocket = "socket" // rekey dials Slack over Socket Mode (Start)
)

// Config of the Slack interactivity webhook: how clicks on the Slack
// notifier's Approve / Deny buttons reach rekey and who may click. The
// notifier it names posts the buttons (only while this webhook exists) and
// lends its bot token for the calls a click needs.
//
//	webhooks:
//	  - name: slack
//	    type: slack
//	    notifier: slack                          # default: the slack notifier whose buttons this serves
//	    signing_secret_env: SLACK_SIGNING_SECRET # or _file; mode http: required
//	    mode: http                               # default; or socket (needs app_token_env/_file)
//	    # app_token_env: SLACK_APP_TOKEN         # mode socket only (xapp-…)
//	    approvers:                               # required: who may click Approve/Deny (checked at click time)
//	      user_ids: [U0123ANA]
//	      user_groups: [S0456SECOPS]
//	    identities:                              # optional: Slack user id → identity, for users whose
//	      U0123ANA: ana@example.com              #   profile email is not how rekey knows them
//	    timeout: 10s                             # default, per Slack API call
//	    team_id: T0123ACME                       # optional: only clicks from this workspace
//	    api_app_id: A0123REKEY                   # optional: only clicks on this Slack app's buttons
type Config struct {
	// Notifier names the slack notifier whose messages carry the buttons.
	Notifier string `koanf:"notifier"`
	// SigningSecretEnv / SigningSecretFile name the Slack app's signing
	// secret, which authenticates interaction requests in mode http.
	SigningSecretEnv  string `koanf:"signing_secret_env"`
	SigningSecretFile string `koanf:"signing_secret_file"`
	// Mode is the transport: http (default) or socket.
	Mode string `koanf:"mode"`
	// AppTokenEnv / AppTokenFile name the app-level token (xapp-…,
	// connections:write) for mode socket.
	AppTokenEnv  string `koanf:"app_token_env"`
	AppTokenFile string `koanf:"app_token_file"`
	// APIURL overrides Slack's Web API base URL (tests): Socket Mode dials
	// through it, and response_url hooks on its host are trusted.
	APIURL string `koanf:"api_url"`
	// Approvers may decide approval gates from Slack; the key's own
	// approval policy still applies.
	Approvers Approvers `koanf:"approvers"`
	// Identities maps Slack user ids to the identity rekey knows them by;
	// others are known by their profile email. A clicker with neither
	// cannot decide.
	Identities map[string]string `koanf:"identities"`
	// Timeout bounds each Slack API call; handling one click takes at most
	// twice as long.
	Timeout time.Duration `koanf:"timeout"`
	// TeamID and APIAppID, when set, are the only workspace and Slack app
	// whose clicks count (an org-wide app is installed in several
	// workspaces; a signing secret is per app, not per workspace).
	TeamID   string `koanf:"team_id"`
	APIAppID string `koanf:"api_app_id"`
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
	return Config{Notifier: DefaultNotifier, Mode: DefaultMode, APIURL: DefaultAPIURL, Timeout: DefaultTimeout}
}

// SigningSecret is the reference to the signing secret.
func (c Config) SigningSecret() secretref.Ref {
	return secretref.Ref{Env: c.SigningSecretEnv, File: c.SigningSecretFile}
}

// AppToken is the reference to the app-level token.
func (c Config) AppToken() secretref.Ref {
	return secretref.Ref{Env: c.AppTokenEnv, File: c.AppTokenFile}
}

var slackIDRe = regexp.MustCompile(`^[A-Z0-9]{2,32}$`)

// Validate reports every problem, each prefixed with its field name.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Notifier == "" {
		add("notifier: required (the name of a slack notifier)")
	}
	switch c.Mode {
	case ModeHTTP:
		if err := c.SigningSecret().Validate("signing_secret", true); err != nil {
			errs = append(errs, err)
		}
		if !c.AppToken().IsZero() {
			add("app_token_env: only used with mode: socket")
		}
	case ModeSocket:
		if err := c.AppToken().Validate("app_token", true); err != nil {
			errs = append(errs, err)
		}
		if !c.SigningSecret().IsZero() {
			add("signing_secret_env: only used with mode: http (Socket Mode requests are not signed)")
		}
	default:
		add("mode: must be http or socket, not %q", c.Mode)
	}
	if u, err := url.Parse(c.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		add("api_url: must be an absolute http(s) URL")
	} else if u.User != nil || u.RawQuery != "" {
		add("api_url: must not carry userinfo or a query")
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
	for id, who := range c.Identities {
		if !slackIDRe.MatchString(id) {
			add("identities: %q must be a Slack user id such as U0123ABCD", id)
		}
		if strings.TrimSpace(who) == "" {
			add("identities.%s: empty identity", id)
		}
	}
	if c.TeamID != "" && !slackIDRe.MatchString(c.TeamID) {
		add("team_id: must be a Slack workspace id such as T0123ABCD, not %q", c.TeamID)
	}
	if c.APIAppID != "" && !slackIDRe.MatchString(c.APIAppID) {
		add("api_app_id: must be a Slack app id such as A0123ABCD, not %q", c.APIAppID)
	}
	if len(c.Approvers.UserIDs) == 0 && len(c.Approvers.UserGroups) == 0 {
		add("approvers: user_ids or user_groups required")
	}
	if c.Timeout <= 0 {
		add("timeout: must be positive")
	}
	return errors.Join(errs...)
}

// apiURL returns the API base with a trailing slash, as slack-go expects.
func (c Config) apiURL() string {
	if strings.HasSuffix(c.APIURL, "/") {
		return c.APIURL
	}
	return c.APIURL + "/"
}
