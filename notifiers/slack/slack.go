// Package slack is the notifier that keeps on-call engineers informed in
// Slack and lets them approve rotations there. Each rotation gets one parent
// message (Block Kit: key, trigger, reason, mode, phase, owners, a progress
// line, the current hold) posted on its first event and updated in place with
// chat.update on every later one; notable steps (minted, staged, cut over,
// drained, revoked, failures, holds, alerts, decisions) are thread replies.
// Where the message lives is remembered in the StateStore, so a restarted
// daemon updates the same message, and delivered event ids too, so Notify is
// idempotent. When a rotation waits on an approval gate and a slack webhook
// receives the clicks (Config.Buttons), the message carries Approve / Deny
// buttons; the webhook checks the clicker, records the decision with the
// engine and calls ShowDecision, lending the notifier's Slack client
// (Client) for its calls. Slack being down never blocks a rotation: Notify
// only returns classified errors, and the engine's dispatcher retries.
package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	slackgo "github.com/slack-go/slack"

	"github.com/rekeyhq/rekey/rotator"
)

// Notifier posts rotation events to Slack and shows decisions made there.
type Notifier struct {
	cfg       Config
	name      string // StateStore namespace
	logger    *slog.Logger
	api       *slackgo.Client
	state     rotator.StateStore
	rotations rotator.RotationReader

	users userCache
	locks keyedMutex // one rotation's message state at a time: Notify and ShowDecision
}

// New checks cfg, reads the bot token once and builds the notifier. state
// is required (idempotent delivery, message locations); rotations is
// optional (it fills in the reason of a rotation). A nil logger discards.
func New(cfg Config, logger *slog.Logger, state rotator.StateStore, rotations rotator.RotationReader) (*Notifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("slack: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if state == nil {
		return nil, errors.New("slack: a state store is required")
	}
	token, err := cfg.Token().Resolve()
	if err != nil {
		return nil, fmt.Errorf("slack: token: %w", err)
	}
	n := &Notifier{cfg: cfg, name: cfg.Name, logger: logger.With("notifier", cfg.Name), state: state, rotations: rotations}
	n.api = slackgo.New(token.Reveal(),
		slackgo.OptionAPIURL(cfg.apiURL()),
		slackgo.OptionHTTPClient(&http.Client{Timeout: cfg.Timeout}))
	return n, nil
}

// Client is the notifier's Slack Web API client, authenticated with its bot
// token, for the slack webhook's calls about a click (who clicked, group
// membership, the ephemeral replies).
func (n *Notifier) Client() *slackgo.Client { return n.api }

// Notify delivers ev: a standalone message for events outside a rotation;
// otherwise the rotation's parent message (posted once, then updated) and a
// thread reply when the event is notable. An event id already delivered is
// skipped. Errors are classified for the dispatcher: rate limits (with
// RetryAfter) and network/5xx/state-store failures are retryable; auth,
// scope and channel errors are permanent.
func (n *Notifier) Notify(ctx context.Context, ev rotator.Event) error {
	if ev.RotationID == "" {
		return n.notifyStandalone(ctx, ev)
	}
	unlock := n.locks.lock(ev.RotationID)
	defer unlock()
	st, err := n.loadRotation(ctx, ev.RotationID)
	if err != nil {
		return err
	}
	if st.delivered(ev.ID) {
		return nil
	}
	fresh := !st.posted()
	if fresh {
		if route(n.cfg, ev) == "" {
			n.logger.Debug("slack: no channel for event", "kind", ev.Kind, "key", ev.Key)
			return nil
		}
		n.fillFromRotation(ctx, ev.RotationID, st)
	}
	apply(st, ev)
	if fresh {
		if err := n.postParent(ctx, ev, st); err != nil {
			return err
		}
		// Remember where the message is before anything else can fail, so
		// that a retry updates it instead of posting a second one.
		if err := n.saveRotation(ctx, ev.RotationID, st); err != nil {
			return err
		}
	} else if err := n.updateParent(ctx, ev.RotationID, st); err != nil {
		return err
	}
	if text, ok := threadReply(ev); ok {
		if m := n.mentions(ctx, ev); m != "" && !(fresh && ev.Kind == rotator.EventStarted) {
			text += "\n" + m
		}
		if err := n.reply(ctx, st, text, broadcast(ev)); err != nil {
			return err
		}
	}
	st.markDelivered(ev.ID)
	return n.saveRotation(ctx, ev.RotationID, st)
}

// fillFromRotation adds what events do not carry (the reason) from the
// store; best effort.
func (n *Notifier) fillFromRotation(ctx context.Context, id string, st *messageState) {
	if n.rotations == nil {
		return
	}
	r, err := n.rotations.GetRotation(ctx, id)
	if err != nil || r == nil {
		return
	}
	st.Reason = r.Reason
	if st.Actor == "" {
		st.Actor = r.Actor
	}
}

// apply folds an event into the message state. An event older than the
// last one applied (a redelivery after a restart) changes no status.
func apply(st *messageState, ev rotator.Event) {
	if st.Key == "" {
		st.Key = ev.Key
	}
	if ev.Trigger != "" {
		st.Trigger = ev.Trigger
	}
	if ev.Mode != "" {
		st.Mode = ev.Mode
	}
	if ev.Actor != "" && (st.Actor == "" || ev.Kind == rotator.EventStarted) {
		st.Actor = ev.Actor
	}
	if len(ev.Owners) > 0 {
		st.Owners = append([]string(nil), ev.Owners...)
	}
	if ev.Kind == rotator.EventStarted {
		if l := ev.Fields["lifecycle"]; l != "" {
			st.Lifecycle = l
		}
		st.NoStartGate = ev.Fields["start_gate"] == "false"
		if ev.Fields["gate"] != "" {
			st.Gate, st.GateWarning = ev.Fields["gate"], ev.Fields["gate_warning"] != ""
		}
	}
	if ev.Kind == rotator.EventStarted && st.Reason == "" {
		// "<mode> rotation of <key> started (<trigger>): <reason>"
		if _, reason, ok := strings.Cut(ev.Message, "): "); ok {
			st.Reason = reason
		}
	}
	if ev.Kind == rotator.EventApproval {
		st.addDecision(decision{Gate: rotator.Gate(ev.Fields["gate"]), Verdict: rotator.Verdict(ev.Fields["verdict"]),
			By: ev.Fields["approver"], At: ev.At})
	}
	if !ev.At.IsZero() && ev.At.Before(st.UpdatedAt) {
		return
	}
	if !ev.At.IsZero() {
		st.UpdatedAt = ev.At
	}
	if ev.RotationID != "" {
		st.Waiting = ev.Waiting
	}
	if ev.Phase != "" {
		if ev.Phase != st.Phase {
			st.Problem = ""
		}
		st.Phase = ev.Phase
		if !ev.Phase.Terminal() && ev.Phase != rotator.PhaseRollingBack {
			st.LastActive = ev.Phase
		}
	}
	switch ev.Kind {
	case rotator.EventHeld:
		st.Hold, st.HoldDetail, st.DecidedGate = rotator.Hold(ev.Fields["hold"]), holdDetail(ev), ""
	case rotator.EventStarted, rotator.EventPhase, rotator.EventFinished, rotator.EventFailed:
		st.Hold, st.HoldDetail, st.DecidedGate = rotator.HoldNone, "", ""
	case rotator.EventRetrying, rotator.EventWatchAlert:
		st.Problem = ev.Message
	}
	if ev.Kind == rotator.EventFinished || ev.Kind == rotator.EventFailed {
		st.Outcome = ev.Message
	}
}

// holdDetail is the engine's "<key> waits: <detail>" message without its
// prefix.
func holdDetail(ev rotator.Event) string {
	prefix := ev.Key + " waits: "
	if len(ev.Message) > len(prefix) && ev.Message[:len(prefix)] == prefix {
		return ev.Message[len(prefix):]
	}
	return ev.Message
}

func (n *Notifier) postParent(ctx context.Context, ev rotator.Event, st *messageState) error {
	channel := route(n.cfg, ev)
	text := parentText(st)
	if m := n.mentions(ctx, ev); m != "" && ev.Kind == rotator.EventStarted {
		// In the visible message as well as the fallback text (which
		// only notifications show).
		st.Mentions = m
		text += " " + m
	}
	cctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	ch, ts, err := n.api.PostMessageContext(cctx, channel,
		slackgo.MsgOptionText(text, false),
		slackgo.MsgOptionBlocks(parentBlocks(ev.RotationID, st, n.cfg.Buttons)...),
		slackgo.MsgOptionDisableLinkUnfurl())
	if err != nil {
		return classify("chat.postMessage", "chat.postMessage "+channel+": rotation "+ev.RotationID, err)
	}
	st.Channel, st.TS = ch, ts
	if st.Channel == "" {
		st.Channel = channel
	}
	return nil
}

// updateParent re-renders the parent message. A message that is gone
// (deleted by someone) is posted afresh.
func (n *Notifier) updateParent(ctx context.Context, rotationID string, st *messageState) error {
	cctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	_, _, _, err := n.api.UpdateMessageContext(cctx, st.Channel, st.TS,
		slackgo.MsgOptionText(parentText(st), false),
		slackgo.MsgOptionBlocks(parentBlocks(rotationID, st, n.cfg.Buttons)...))
	if err == nil {
		return nil
	}
	if isAPIError(err, "message_not_found") {
		n.logger.Warn("slack: parent message is gone; posting a new one", "rotation", rotationID, "channel", st.Channel)
		pctx, pcancel := context.WithTimeout(ctx, n.cfg.Timeout)
		defer pcancel()
		ch, ts, perr := n.api.PostMessageContext(pctx, st.Channel,
			slackgo.MsgOptionText(parentText(st), false),
			slackgo.MsgOptionBlocks(parentBlocks(rotationID, st, n.cfg.Buttons)...))
		if perr != nil {
			return classify("chat.postMessage", "chat.postMessage "+st.Channel+": rotation "+rotationID, perr)
		}
		st.Channel, st.TS = ch, ts
		return n.saveRotation(ctx, rotationID, st)
	}
	return classify("chat.update", "chat.update "+st.Channel+": rotation "+rotationID, err)
}

func (n *Notifier) reply(ctx context.Context, st *messageState, text string, toChannel bool) error {
	cctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	opts := []slackgo.MsgOption{
		slackgo.MsgOptionText(truncate(text, maxSectionText), false),
		slackgo.MsgOptionTS(st.TS),
		slackgo.MsgOptionDisableLinkUnfurl(),
	}
	if toChannel {
		opts = append(opts, slackgo.MsgOptionBroadcast())
	}
	if _, _, err := n.api.PostMessageContext(cctx, st.Channel, opts...); err != nil {
		return classify("chat.postMessage", "chat.postMessage "+st.Channel+": thread "+st.TS, err)
	}
	return nil
}

// notifyStandalone posts an event outside a rotation once.
func (n *Notifier) notifyStandalone(ctx context.Context, ev rotator.Event) error {
	if ev.ID != "" {
		_, seen, err := n.state.GetState(ctx, n.name, eventPrefix+ev.ID)
		if err != nil {
			return stateError("read event "+ev.ID, err)
		}
		if seen {
			return nil
		}
	}
	channel := route(n.cfg, ev)
	if channel == "" {
		return nil
	}
	m := n.mentions(ctx, ev)
	cctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	if _, _, err := n.api.PostMessageContext(cctx, channel,
		slackgo.MsgOptionText(standaloneText(ev), false),
		slackgo.MsgOptionBlocks(standaloneBlocks(ev, m)...),
		slackgo.MsgOptionDisableLinkUnfurl()); err != nil {
		return classify("chat.postMessage", "chat.postMessage "+channel+": event "+ev.ID, err)
	}
	if ev.ID == "" {
		return nil
	}
	if err := n.state.PutState(ctx, n.name, eventPrefix+ev.ID, "1"); err != nil {
		return stateError("write event "+ev.ID, err)
	}
	return nil
}

var _ rotator.Notifier = (*Notifier)(nil)
