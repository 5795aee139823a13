package slack

import (
	"strings"
	"testing"

	"github.com/rekeyhq/rekey/rotator"
)

func TestRoute(t *testing.T) {
	cfg := Config{
		Channel: "#rekey",
		Channels: []Route{
			{Match: "payments-*", Channel: "#payments-oncall", MinSeverity: "warning"},
			{Triggers: []string{"exposure", "unauthorized"}, Channel: "#security"},
			{Mode: "emergency", Channel: "#emergencies"},
			{Match: "legacy-?", Channel: "#legacy"},
		},
	}
	tests := map[string]struct {
		ev   rotator.Event
		want string
	}{
		"glob and severity":       {ev: rotator.Event{Key: "payments-api", Severity: rotator.SeverityWarning}, want: "#payments-oncall"},
		"critical is above":       {ev: rotator.Event{Key: "payments-api", Severity: rotator.SeverityCritical}, want: "#payments-oncall"},
		"info is below the min":   {ev: rotator.Event{Key: "payments-api", Severity: rotator.SeverityInfo}, want: "#rekey"},
		"trigger rule":            {ev: rotator.Event{Key: "search", Severity: rotator.SeverityInfo, Trigger: rotator.TriggerExposure}, want: "#security"},
		"mode rule":               {ev: rotator.Event{Key: "search", Trigger: rotator.TriggerDecommission, Mode: rotator.ModeEmergency}, want: "#emergencies"},
		"first match wins":        {ev: rotator.Event{Key: "payments-api", Severity: rotator.SeverityCritical, Trigger: rotator.TriggerExposure}, want: "#payments-oncall"},
		"single-character glob":   {ev: rotator.Event{Key: "legacy-1"}, want: "#legacy"},
		"glob does not match":     {ev: rotator.Event{Key: "legacy-12"}, want: "#rekey"},
		"unknown severity counts": {ev: rotator.Event{Key: "payments-x", Severity: "loud"}, want: "#payments-oncall"},
		"default":                 {ev: rotator.Event{Key: "search", Severity: rotator.SeverityInfo, Trigger: rotator.TriggerAge}, want: "#rekey"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := route(cfg, tc.ev); got != tc.want {
				t.Fatalf("route = %q, want %q", got, tc.want)
			}
		})
	}
	cfg.Channel = ""
	if got := route(cfg, rotator.Event{Key: "search"}); got != "" {
		t.Fatalf("route without default = %q, want nothing", got)
	}
}

// TestRoutedRotationStaysInItsChannel: a rotation's channel is chosen by its
// first event; later events update that message even when they would route
// elsewhere.
func TestRoutedRotationStaysInItsChannel(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Channels = []Route{{Match: "payments-*", Channel: "#payments-oncall", MinSeverity: "critical"}}
	})
	b := newEvents("rot_route001", "payments-api")
	b.mode, b.trigger = rotator.ModeEmergency, rotator.TriggerExposure
	e.notify(b.started(), b.phase(rotator.PhaseRevoking, rotator.PhaseMinting, map[string]string{"generation": "1"}))
	if p := e.slack.parents(); len(p) != 1 || p[0].Form.Get("channel") != "#payments-oncall" {
		t.Fatalf("parents = %+v, want one in #payments-oncall", p)
	}
	for _, c := range append(e.slack.byMethod("chat.update"), e.slack.replies()...) {
		if c.Form.Get("channel") != "CPAYMENTSONCALL" {
			t.Fatalf("%s went to %s, want the parent's channel", c.Method, c.Form.Get("channel"))
		}
	}
}

func TestNoChannelNoMessage(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Channel = ""
		c.Channels = []Route{{Match: "payments-*", Channel: "#payments-oncall"}}
	})
	b := newEvents("rot_nochan01", "search-api")
	e.notify(b.started(), rotator.Event{ID: "ev_x", Kind: rotator.EventWarnAge, Key: "search-api", Severity: rotator.SeverityWarning})
	if got := len(e.slack.all()); got != 0 {
		t.Fatalf("%d Slack calls for unrouted events, want 0", got)
	}
}

// TestMentions: failures, escalations and emergencies mention the owners
// (resolved by email once, then from the cache) and the on-call group;
// routine events mention nobody.
func TestMentions(t *testing.T) {
	e := newEnv(t, nil)
	b := newEvents("rot_emerg001", "payments-api")
	b.mode, b.trigger = rotator.ModeEmergency, rotator.TriggerExposure
	b.owners = []string{"ana@example.com", "carol@example.com"} // carol has no Slack account
	e.notify(
		b.started(),
		b.phase(rotator.PhaseRevoking, rotator.PhaseMinting, map[string]string{"generation": "1", "by": "rekey"}),
		b.held(rotator.PhaseCuttingOver, rotator.HoldFailed, "permanent failure in cutting_over: vault: HTTP 403", rotator.SeverityCritical),
		b.ev(rotator.EventWatchAlert, rotator.PhaseWatching, rotator.SeverityCritical, "401s on payments-api after revocation", nil),
	)
	const all = "<@UANA> carol@example.com <!subteam^SONCALL>"
	parent := e.slack.parents()[0]
	if !strings.Contains(parent.Form.Get("text"), all) {
		t.Errorf("emergency parent text %q lacks %q", parent.Form.Get("text"), all)
	}
	if !strings.Contains(parent.text(t), all) {
		t.Errorf("the mentions are in the fallback text only, not in the visible message: %s", parent.text(t))
	}
	if !strings.Contains(parent.text(t), "Emergency key rotation: payments-api") {
		t.Errorf("emergency parent header missing: %s", parent.text(t))
	}
	replies := e.slack.replies()
	if len(replies) != 3 {
		t.Fatalf("%d replies, want 3", len(replies))
	}
	if strings.Contains(replies[0].Form.Get("text"), "<@") || replies[0].Form.Get("reply_broadcast") != "" {
		t.Errorf("routine reply %q mentions or broadcasts", replies[0].Form.Get("text"))
	}
	for _, r := range replies[1:] {
		if !strings.Contains(r.Form.Get("text"), all) || r.Form.Get("reply_broadcast") != "true" {
			t.Errorf("paging reply %q (broadcast %q) lacks %q", r.Form.Get("text"), r.Form.Get("reply_broadcast"), all)
		}
	}
	if got := len(e.slack.byMethod("users.lookupByEmail")); got != 2 {
		t.Errorf("%d users.lookupByEmail calls for 2 owners over 3 paging events, want 2 (cached)", got)
	}

	e2 := newEnv(t, func(c *Config) { c.MentionOwners, c.OncallGroup = false, "" })
	e2.notify(b.started())
	if strings.Contains(e2.slack.parents()[0].Form.Get("text"), "<") {
		t.Errorf("mentions although disabled: %q", e2.slack.parents()[0].Form.Get("text"))
	}
}

func TestStandaloneEvents(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Channels = []Route{{Match: "payments-*", Channel: "#payments-oncall", MinSeverity: "warning"}}
	})
	fp := rotator.Fingerprint(fakeSecret)
	e.notify(
		rotator.Event{ID: "ev_age1", Kind: rotator.EventWarnAge, Severity: rotator.SeverityWarning, Key: "payments-api",
			Owners: []string{"ana@example.com"}, Message: "payments-api will be rotated soon: 85 days old",
			Fields: map[string]string{"policy": "maxage", "due": "2025-03-06T10:00:00Z"}},
		rotator.Event{ID: "ev_leak1", Kind: rotator.EventUnknownLeak, Severity: rotator.SeverityCritical,
			Message: "an exposed secret matches no managed key", Fields: map[string]string{"fingerprint": fp, "source": "github"}},
	)
	posts := e.slack.parents()
	if len(posts) != 2 {
		t.Fatalf("%d posts, want 2", len(posts))
	}
	if posts[0].Form.Get("channel") != "#payments-oncall" || strings.Contains(posts[0].text(t), "<@") {
		t.Errorf("age warning: channel %q text %q", posts[0].Form.Get("channel"), posts[0].text(t))
	}
	leak := posts[1].text(t)
	if posts[1].Form.Get("channel") != "#rekey" || !strings.Contains(leak, "<!subteam^SONCALL>") ||
		!strings.Contains(leak, rotator.ShortFingerprint(fp)) || strings.Contains(leak, fp) {
		t.Errorf("unknown exposure: channel %q text %q", posts[1].Form.Get("channel"), leak)
	}
	e.assertNoLeak()
}
