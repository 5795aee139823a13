// Package log is the notifier that writes each rotation event as one
// structured slog record — the embedded default, so that a fresh install
// reports what it does without any external service. The record's level
// follows the event's severity (info → INFO, warning → WARN, critical →
// ERROR), its message is the event's message, and every field of the event,
// including each entry of Event.Fields, is a top-level attribute.
package log

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"

	"github.com/rekeyhq/rekey/rotator"
)

// Notifier writes events to a slog.Logger.
type Notifier struct {
	logger *slog.Logger
	min    int
}

// New returns a notifier writing with logger (nil discards).
func New(cfg Config, logger *slog.Logger) (*Notifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("log: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Notifier{logger: logger, min: severityRank[rotator.Severity(cfg.Level)]}, nil
}

// reserved are the attribute names of the event itself; an Event.Fields
// entry with one of these names is written as "field.<name>".
var reserved = map[string]bool{
	"event_id": true, "kind": true, "severity": true, "key": true, "rotation": true,
	"phase": true, "trigger": true, "mode": true, "actor": true, "owners": true, "at": true, "waiting": true, "waiting_detail": true,
	slog.TimeKey: true, slog.LevelKey: true, slog.MessageKey: true, slog.SourceKey: true,
}

// Notify writes ev as one record unless its severity is below the minimum.
// It never fails.
func (n *Notifier) Notify(ctx context.Context, ev rotator.Event) error {
	rank, known := severityRank[ev.Severity]
	if !known {
		rank = severityRank[rotator.SeverityWarning] // unknown severities are not dropped silently
	}
	if rank < n.min {
		return nil
	}
	level := slog.LevelInfo
	switch rank {
	case 1:
		level = slog.LevelWarn
	case 2:
		level = slog.LevelError
	}
	if !n.logger.Enabled(ctx, level) {
		return nil
	}
	msg := ev.Message
	if msg == "" {
		msg = ev.Kind
	}
	attrs := make([]slog.Attr, 0, 12+len(ev.Fields))
	add := func(k, v string) {
		if v != "" {
			attrs = append(attrs, slog.String(k, v))
		}
	}
	add("event_id", ev.ID)
	add("kind", ev.Kind)
	add("severity", string(ev.Severity))
	add("key", ev.Key)
	add("rotation", ev.RotationID)
	add("phase", string(ev.Phase))
	add("trigger", string(ev.Trigger))
	add("mode", string(ev.Mode))
	add("actor", ev.Actor)
	if w := ev.Waiting; w != nil {
		add("waiting", string(w.Reason))
		add("waiting_detail", w.Detail)
	}
	if len(ev.Owners) > 0 {
		attrs = append(attrs, slog.Any("owners", ev.Owners))
	}
	if !ev.At.IsZero() {
		attrs = append(attrs, slog.Time("at", ev.At.UTC()))
	}
	for _, k := range slices.Sorted(maps.Keys(ev.Fields)) {
		attrs = append(attrs, field(k, ev.Fields[k]))
	}
	n.logger.LogAttrs(ctx, level, msg, attrs...)
	return nil
}

// renamed are event fields written under the name every other log line
// uses for the concept: errors are "err" everywhere, counts of errors are
// not errors.
var renamed = map[string]string{"error": "err", "errors": "error_count"}

// counts are event fields that are numbers wherever rekey logs them (a
// generation is an integer in sink lines too).
var counts = map[string]bool{"generation": true, "attempt": true, "attempts": true, "polls": true, "readings": true,
	"errors": true, "sinks": true, "count": true}

// field is one event field as an attribute: renamed to the common name,
// an integer where the concept is one, prefixed when it would shadow an
// attribute of the event itself.
func field(k, v string) slog.Attr {
	name := k
	if r, ok := renamed[k]; ok {
		name = r
	}
	if reserved[name] {
		name = "field." + name
	}
	if counts[k] {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return slog.Int64(name, n)
		}
	}
	return slog.String(name, v)
}

var _ rotator.Notifier = (*Notifier)(nil)
