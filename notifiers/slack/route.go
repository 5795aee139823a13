package slack

import (
	"context"
	"errors"
	"path"
	"slices"
	"strings"
	"sync"

	slackgo "github.com/slack-go/slack"

	"github.com/rekeyhq/rekey/rotator"
)

// route picks the channel for an event: the first rule whose conditions all
// hold, else the default channel ("" = the event goes nowhere).
func route(cfg Config, ev rotator.Event) string {
	for _, r := range cfg.Channels {
		if r.Match != "" {
			if ok, _ := path.Match(r.Match, ev.Key); !ok {
				continue
			}
		}
		if r.MinSeverity != "" && severityRank(ev.Severity) < severities[r.MinSeverity] {
			continue
		}
		if len(r.Triggers) > 0 && !slices.Contains(r.Triggers, string(ev.Trigger)) {
			continue
		}
		if r.Mode != "" && r.Mode != string(ev.Mode) {
			continue
		}
		return r.Channel
	}
	return cfg.Channel
}

// severityRank orders severities; an unknown one counts as a warning so
// that it is not filtered out silently.
func severityRank(s rotator.Severity) int {
	if r, ok := severities[string(s)]; ok {
		return r
	}
	return severities[string(rotator.SeverityWarning)]
}

// pages reports whether an event calls for people: failures, escalations
// (held drain_timeout / failed), alerts and emergencies.
func pages(ev rotator.Event) bool {
	switch ev.Kind {
	case rotator.EventFailed, rotator.EventWatchAlert, rotator.EventUnknownLeak:
		return true
	case rotator.EventHeld:
		// A critical wait (a leaked key a person must revoke now, a
		// contained emergency) pages like an escalation.
		h := rotator.Hold(ev.Fields["hold"])
		return h == rotator.HoldDrainTimeout || h == rotator.HoldFailed || ev.Severity == rotator.SeverityCritical
	case rotator.EventFinished:
		return ev.Phase == rotator.PhaseFailed
	case rotator.EventPhase:
		return ev.Phase == rotator.PhaseRollingBack && ev.Fields["error"] != ""
	case rotator.EventStarted:
		return ev.Mode == rotator.ModeEmergency
	}
	return ev.Severity == rotator.SeverityCritical
}

// mentions renders who an event pages: the owners (as Slack users when
// their email resolves, else as plain text) and the on-call group.
func (n *Notifier) mentions(ctx context.Context, ev rotator.Event) string {
	if !pages(ev) {
		return ""
	}
	var out []string
	if n.cfg.MentionOwners {
		for _, o := range ev.Owners {
			if id := n.users.lookup(ctx, n, o); id != "" {
				out = append(out, "<@"+id+">")
			} else {
				out = append(out, escape(o))
			}
		}
	}
	if n.cfg.OncallGroup != "" {
		out = append(out, "<!subteam^"+n.cfg.OncallGroup+">")
	}
	return strings.Join(out, " ")
}

// userCache remembers email → Slack user id lookups (and misses) in memory.
type userCache struct {
	mu sync.Mutex
	m  map[string]string // "" = looked up, not found
}

func (c *userCache) lookup(ctx context.Context, n *Notifier, email string) string {
	if !strings.Contains(email, "@") {
		return ""
	}
	key := strings.ToLower(email)
	c.mu.Lock()
	id, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return id
	}
	cctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	u, err := n.api.GetUserByEmailContext(cctx, email)
	switch {
	case err == nil && u != nil && !u.Deleted:
		id = u.ID
	case err == nil, isAPIError(err, "users_not_found"):
		id = ""
	default:
		// Not cached: Slack may answer next time. The mention falls back to
		// the plain address; delivery does not fail over it.
		n.logger.Warn("slack: users.lookupByEmail failed", "err", classify("users.lookupByEmail", "users.lookupByEmail", err).Error())
		return ""
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]string{}
	}
	c.m[key] = id
	c.mu.Unlock()
	return id
}

func isAPIError(err error, code string) bool {
	var api slackgo.SlackErrorResponse
	return errors.As(err, &api) && api.Err == code
}
