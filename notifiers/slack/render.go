package slack

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	slackgo "github.com/slack-go/slack"

	"github.com/rekeyhq/rekey/internal/slackapproval"
	"github.com/rekeyhq/rekey/rotator"
)

// maxSectionText bounds a section's text: Slack's limit is 3000.
const maxSectionText = 2900

// escape makes text safe for mrkdwn: no accidental links or mentions.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func label(p rotator.Phase) string { return strings.ReplaceAll(string(p), "_", " ") }

func mrkdwn(s string) *slackgo.TextBlockObject {
	return slackgo.NewTextBlockObject(slackgo.MarkdownType, truncate(s, maxSectionText), false, false)
}

func plain(s string) *slackgo.TextBlockObject {
	return slackgo.NewTextBlockObject(slackgo.PlainTextType, s, true, false)
}

// slackDate renders t in each reader's own time zone, with a UTC fallback.
func slackDate(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}

// progressPhases is the path a rotation takes, for the progress line:
// its lifecycle table's usual path, without the start gate when the key
// has none.
func progressPhases(st *messageState) []rotator.Phase {
	l := rotator.LifecycleOf(&rotator.Rotation{Lifecycle: st.Lifecycle, Trigger: st.Trigger, Mode: st.Mode})
	path := l.Path()
	if st.NoStartGate {
		path = slices.DeleteFunc(path, func(p rotator.Phase) bool { return p == rotator.PhaseAwaitingApproval })
	}
	return path
}

// progressLine draws the phases: ✓ done, ▶ current, ✗ where it stopped.
func progressLine(st *messageState) string {
	phases := progressPhases(st)
	cur := st.Phase
	stopped := st.Phase == rotator.PhaseRollingBack || (st.Phase.Terminal() && st.Phase != rotator.PhaseDone)
	if stopped {
		cur = st.LastActive
	}
	at := slices.Index(phases, cur)
	parts := make([]string, 0, len(phases)+1)
	for i, p := range phases {
		l := label(p)
		if p == rotator.PhaseAwaitingApproval {
			l = "approval"
		}
		switch {
		case st.Phase == rotator.PhaseDone || (at >= 0 && i < at):
			parts = append(parts, "✓ "+l)
		case i == at && stopped:
			parts = append(parts, "✗ "+l)
		case i == at:
			parts = append(parts, "▶ *"+l+"*")
		case stopped:
			// the path not taken is left out
		default:
			parts = append(parts, l)
		}
	}
	line := strings.Join(parts, " · ")
	if stopped {
		line += " → ↩ *" + label(st.Phase) + "*"
	}
	return line
}

var holdLabels = map[rotator.Hold]string{
	rotator.HoldApproval:     "approval",
	rotator.HoldSecret:       "a person to mint the new key and submit it (`rekey submit`)",
	rotator.HoldConfirm:      "a person to revoke by hand and confirm (`rekey confirm`)",
	rotator.HoldDrainTimeout: "a decision: traffic has not drained",
	rotator.HoldFailed:       "a person: the step failed permanently",
}

// parentBlocks renders a rotation's parent message.
func parentBlocks(rotationID string, st *messageState, buttons bool) []slackgo.Block {
	title := "Key rotation: " + st.Key
	if st.Mode == rotator.ModeEmergency {
		title = "Emergency key rotation: " + st.Key
	}
	blocks := []slackgo.Block{slackgo.NewHeaderBlock(plain(truncate(title, 140)))}

	phase := label(st.Phase)
	if st.Phase == rotator.PhaseAwaitingApproval && st.NoStartGate {
		phase = "starting" // no approval gate: it only passes through
	}
	status := fmt.Sprintf("%s *%s*", phaseEmoji(st.Phase), escape(phase))
	if st.Hold != rotator.HoldNone {
		hl := holdLabels[st.Hold]
		switch {
		case st.Lifecycle == rotator.EmergencyByHand.Name && st.Hold == rotator.HoldSecret:
			hl = "a person to revoke the exposed key and mint its replacement (`rekey confirm`, `rekey submit`, either order)"
		case hl == "":
			hl = string(st.Hold)
		}
		status += fmt.Sprintf("\n:double_vertical_bar: *Waiting for %s*", hl)
		if st.HoldDetail != "" {
			status += "\n" + escape(st.HoldDetail)
		}
	}
	if st.Phase.Terminal() && st.Outcome != "" {
		status += "\n" + escape(st.Outcome)
	}
	if st.Mentions != "" && !st.Phase.Terminal() {
		status += "\n:loudspeaker: " + st.Mentions
	}
	blocks = append(blocks, slackgo.NewSectionBlock(mrkdwn(status), nil, nil))

	trigger := escape(string(st.Trigger))
	if st.Actor != "" {
		trigger += " (by " + escape(st.Actor) + ")"
	}
	owners := "—"
	if len(st.Owners) > 0 {
		owners = escape(strings.Join(st.Owners, ", "))
	}
	fields := []*slackgo.TextBlockObject{
		mrkdwn("*Key*\n`" + escape(st.Key) + "`"),
		mrkdwn("*Trigger*\n" + trigger),
		mrkdwn("*Mode*\n" + escape(string(st.Mode))),
		mrkdwn("*Phase*\n" + escape(phase)),
		mrkdwn("*Owners*\n" + owners),
		mrkdwn("*Rotation*\n`" + escape(rotationID) + "`"),
	}
	if st.Reason != "" {
		fields = append(fields, mrkdwn("*Reason*\n"+escape(truncate(st.Reason, 1900))))
	}
	blocks = append(blocks, slackgo.NewSectionBlock(nil, fields, nil))
	blocks = append(blocks, slackgo.NewContextBlock("", mrkdwn(progressLine(st))))
	if st.Gate != "" && !st.Phase.Terminal() {
		icon := ":shield:"
		if st.GateWarning {
			icon = ":warning:"
		}
		blocks = append(blocks, slackgo.NewContextBlock("", mrkdwn(icon+" *Drain gate* "+escape(truncate(st.Gate, 1500)))))
	}
	if w := st.Waiting; w != nil && !st.Phase.Terminal() {
		blocks = append(blocks, slackgo.NewContextBlock("", mrkdwn(waitingLine(w))))
	}
	if st.Problem != "" && !st.Phase.Terminal() {
		blocks = append(blocks, slackgo.NewContextBlock("", mrkdwn(":warning: "+escape(st.Problem))))
	}
	if len(st.Decisions) > 0 {
		lines := make([]string, 0, len(st.Decisions))
		for _, d := range st.Decisions {
			lines = append(lines, decisionLine(d))
		}
		blocks = append(blocks, slackgo.NewContextBlock("", mrkdwn(strings.Join(lines, "\n"))))
	}
	if g, ok := st.pendingGate(); ok && buttons {
		blocks = append(blocks, decisionButtons(rotationID, st.Key, g))
	}
	return blocks
}

// waitingLine says what the rotation waits for: the reason, how far it
// got, when rekey looks again or gives up, and the last error.
func waitingLine(w *rotator.Waiting) string {
	s := ":hourglass_flowing_sand: *Waiting: " + escape(strings.ReplaceAll(string(w.Reason), "_", " ")) + "* — " + escape(truncate(w.Detail, 900))
	if p := w.Progress; p != nil {
		s += fmt.Sprintf(" · %d of %d %s", p.Done, p.Of, escape(p.Unit))
	}
	s += " · since " + slackDate(w.Since)
	if !w.NextCheck.IsZero() {
		s += " · next check " + slackDate(w.NextCheck)
	}
	if !w.Deadline.IsZero() {
		s += " · deadline " + slackDate(w.Deadline)
	}
	if !w.Escalates.IsZero() {
		s += " · escalates to on-call " + slackDate(w.Escalates)
	}
	if w.LastError != "" {
		s += "\nLast error: `" + escape(truncate(w.LastError, 900)) + "`"
	}
	return s
}

func decisionLine(d decision) string {
	verb, icon := "Approved", ":white_check_mark:"
	if d.Verdict == rotator.VerdictDeny {
		verb, icon = "Denied", ":no_entry:"
	}
	who := escape(d.By)
	if d.SlackID != "" {
		who = "<@" + d.SlackID + "> (" + escape(d.By) + ")"
	}
	return fmt.Sprintf("%s *%s* (%s gate) by %s · %s", icon, verb, d.Gate, who, slackDate(d.At))
}

func decisionButtons(rotationID, key string, g rotator.Gate) slackgo.Block {
	value := slackapproval.ButtonValue(rotationID, g)
	approveText, denyText := "Approve", "Deny"
	var confirm *slackgo.ConfirmationBlockObject
	switch g {
	case rotator.GateRevoke:
		approveText = "Approve revocation"
		confirm = slackgo.NewConfirmationBlockObject(plain("Revoke the old key?"),
			mrkdwn("The old credential of `"+escape(key)+"` will stop working at once."), plain("Revoke"), plain("Cancel"))
	case rotator.GateDrain:
		approveText, denyText = "Revoke anyway", "Roll back"
		confirm = slackgo.NewConfirmationBlockObject(plain("Revoke although traffic still fails?"),
			mrkdwn("Callers still using the old credential of `"+escape(key)+"` will get 401."), plain("Revoke"), plain("Cancel"))
	}
	approve := slackgo.NewButtonBlockElement(slackapproval.ActionApprove, value, plain(approveText)).WithStyle(slackgo.StylePrimary)
	if confirm != nil {
		approve = approve.WithConfirm(confirm)
	}
	deny := slackgo.NewButtonBlockElement(slackapproval.ActionDeny, value, plain(denyText)).WithStyle(slackgo.StyleDanger)
	return slackgo.NewActionBlock(slackapproval.DecisionBlock, approve, deny)
}

func phaseEmoji(p rotator.Phase) string {
	switch p {
	case rotator.PhaseDone:
		return ":white_check_mark:"
	case rotator.PhaseFailed:
		return ":x:"
	case rotator.PhaseCancelled, rotator.PhaseDenied, rotator.PhaseExpired:
		return ":black_square_for_stop:"
	case rotator.PhaseRollingBack:
		return ":leftwards_arrow_with_hook:"
	case rotator.PhaseAwaitingApproval:
		return ":hourglass_flowing_sand:"
	}
	return ":arrows_counterclockwise:"
}

// parentText is the notification / fallback text of the parent message.
func parentText(st *messageState) string {
	s := fmt.Sprintf("rekey: %s rotation of %s — %s", st.Mode, st.Key, label(st.Phase))
	if st.Hold != rotator.HoldNone {
		s += " (waiting for " + string(st.Hold) + ")"
	}
	return escape(s)
}

// threadReply returns the thread reply an event deserves, if any.
func threadReply(ev rotator.Event) (string, bool) {
	f := ev.Fields
	msg := escape(ev.Message)
	switch ev.Kind {
	case rotator.EventPhase:
		from := rotator.Phase(f["from"])
		switch {
		case ev.Phase == rotator.PhaseRollingBack && f["error"] != "":
			return fmt.Sprintf(":x: *Step failed* (%s): %s — rolling back", escape(f["reason"]), escape(f["error"])), true
		case ev.Phase == rotator.PhaseRollingBack && f["reason"] != "":
			return ":leftwards_arrow_with_hook: Rolling back: " + escape(f["reason"]), true
		case ev.Phase == rotator.PhaseRollingBack:
			return ":leftwards_arrow_with_hook: Rolling back", true
		case from == rotator.PhaseMinting:
			return fmt.Sprintf(":coin: Minted generation %s (fingerprint `%s`)", escape(f["generation"]), escape(rotator.ShortFingerprint(f["fingerprint"]))), true
		case from == rotator.PhaseStaging && ev.Mode == rotator.ModeEmergency:
			return fmt.Sprintf(":package: Delivered generation %s as current in %s sink(s)", escape(f["generation"]), escape(f["sinks"])), true
		case from == rotator.PhaseStaging:
			return fmt.Sprintf(":package: Staged the new key in %s sink(s)", escape(f["sinks"])), true
		case from == rotator.PhaseCuttingOver:
			return fmt.Sprintf(":twisted_rightwards_arrows: Cut over: generation %s is current", escape(f["generation"])), true
		case from == rotator.PhaseDraining:
			return drainExit(f), true
		case from == rotator.PhaseRevoking && f["already"] == "true":
			return ":wastebasket: The old credential was already revoked", true
		case from == rotator.PhaseRevoking:
			return fmt.Sprintf(":wastebasket: Revoked generation %s", escape(f["generation"])), true
		}
		return "", false
	case rotator.EventStarted:
		return "", false
	case rotator.EventHeld:
		icon := ":double_vertical_bar:"
		if rotator.Hold(f["hold"]) == rotator.HoldDrainTimeout || rotator.Hold(f["hold"]) == rotator.HoldFailed || ev.Severity == rotator.SeverityCritical {
			icon = ":rotating_light:"
		}
		return icon + " " + msg, true
	case rotator.EventApproval:
		icon := ":thumbsup:"
		if rotator.Verdict(f["verdict"]) == rotator.VerdictDeny {
			icon = ":no_entry:"
		}
		return icon + " " + msg, true
	case rotator.EventFinished:
		return phaseEmoji(ev.Phase) + " " + msg, true
	case rotator.EventWatchAlert:
		return ":rotating_light: *Watch alert*: " + msg, true
	case rotator.EventFailed:
		return ":x: " + msg, true
	case rotator.EventRetrying, rotator.EventOrphan:
		return ":warning: " + msg, true
	}
	if severityRank(ev.Severity) >= severities[string(rotator.SeverityWarning)] && msg != "" {
		return severityEmoji(ev.Severity) + " " + msg, true
	}
	return "", false
}

// broadcast reports whether a thread reply should also show in the channel.
func broadcast(ev rotator.Event) bool { return pages(ev) && ev.Kind != rotator.EventStarted }

func severityEmoji(s rotator.Severity) string {
	switch s {
	case rotator.SeverityCritical:
		return ":rotating_light:"
	case rotator.SeverityWarning:
		return ":warning:"
	}
	return ":information_source:"
}

// standaloneBlocks renders an event that belongs to no rotation (age
// warnings, unknown exposures).
func standaloneBlocks(ev rotator.Event, mentions string) []slackgo.Block {
	head := fmt.Sprintf("%s *%s*", severityEmoji(ev.Severity), escape(ev.Kind))
	if ev.Key != "" {
		head += " · `" + escape(ev.Key) + "`"
	}
	if ev.Message != "" {
		head += "\n" + escape(ev.Message)
	}
	if mentions != "" {
		head += "\n" + mentions
	}
	blocks := []slackgo.Block{slackgo.NewSectionBlock(mrkdwn(head), nil, nil)}
	if len(ev.Fields) > 0 {
		keys := slices.Sorted(maps.Keys(ev.Fields))
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			v := ev.Fields[k]
			if k == "fingerprint" || strings.HasSuffix(k, "_fingerprint") {
				v = rotator.ShortFingerprint(v)
			}
			parts = append(parts, escape(k)+": "+escape(truncate(v, 300)))
		}
		blocks = append(blocks, slackgo.NewContextBlock("", mrkdwn(strings.Join(parts, " · "))))
	}
	return blocks
}

func standaloneText(ev rotator.Event) string {
	s := "rekey: " + ev.Kind
	if ev.Key != "" {
		s += " " + ev.Key
	}
	if ev.Message != "" {
		s += ": " + ev.Message
	}
	return escape(truncate(s, maxSectionText))
}
