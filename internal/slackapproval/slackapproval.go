// Package slackapproval is the contract between the Slack notifier
// (notifiers/slack), which posts Approve / Deny buttons on a rotation's
// message, and the Slack interactivity webhook (webhooks/slack), which
// receives the clicks: the buttons' action ids and value format, where a
// message is, and the decision the webhook asks the notifier to show.
// Neither adapter imports the other; app connects them.
package slackapproval

import (
	"strings"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// Interactive element ids of rekey's buttons. A button's value is
// ButtonValue and nothing else: never key material.
const (
	ActionApprove = "rekey_approve"
	ActionDeny    = "rekey_deny"
	DecisionBlock = "rekey_decision" // block id of the buttons' actions block
)

// ButtonValue is the value of the Approve / Deny buttons of a gate:
// "<rotation id>:<gate>".
func ButtonValue(rotationID string, g rotator.Gate) string { return rotationID + ":" + string(g) }

// ParseButtonValue splits a ButtonValue; false when v is not one.
func ParseButtonValue(v string) (string, rotator.Gate, bool) {
	i := strings.LastIndexByte(v, ':')
	if i <= 0 || i == len(v)-1 {
		return "", "", false
	}
	id, g := v[:i], rotator.Gate(v[i+1:])
	switch g {
	case rotator.GateStart, rotator.GateRevoke, rotator.GateDrain:
		return id, g, true
	}
	return "", "", false
}

// Message locates a Slack message: the channel id and the message ts.
type Message struct {
	Channel string
	TS      string
}

// Decision is one Approve / Deny recorded by the engine from a click.
type Decision struct {
	Gate    rotator.Gate
	Verdict rotator.Verdict
	By      string // the identity the engine recorded (email or "slack:<id>")
	SlackID string // the clicker's Slack user id
	At      time.Time
}
