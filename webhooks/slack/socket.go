package slack

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	slackgo "github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// Start connects to Slack over Socket Mode (mode socket) and handles
// button clicks until ctx ends or Close is called; each envelope is
// acknowledged first, then handled in the background like an HTTP
// interaction. The connection is re-established with backoff when it
// fails. In mode http it does nothing.
func (h *Handler) Start(ctx context.Context) error {
	if h.cfg.Mode != ModeSocket {
		return nil
	}
	h.mu.Lock()
	switch {
	case h.closed:
		h.mu.Unlock()
		return errors.New("slack webhook: start after close")
	case h.started:
		h.mu.Unlock()
		return errors.New("slack webhook: already started")
	}
	h.started = true
	h.wg.Add(1)
	h.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-h.closing:
		case <-ctx.Done():
		}
		cancel()
	}()
	go func() {
		defer h.wg.Done()
		defer cancel()
		h.runSocket(ctx)
	}()
	return nil
}

// runSocket keeps a Socket Mode connection up until ctx ends. The
// connection is opened with the app-level token only.
func (h *Handler) runSocket(ctx context.Context) {
	api := slackgo.New("", slackgo.OptionAppLevelToken(h.appToken.Reveal()), slackgo.OptionAPIURL(h.cfg.apiURL()))
	delay := time.Second
	for ctx.Err() == nil {
		client := socketmode.New(api, socketmode.OptionLog(slogOutput{h.log}))
		evCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			h.socketEvents(evCtx, client)
		}()
		err := client.RunContext(ctx)
		stop()
		<-done
		if ctx.Err() != nil {
			return
		}
		h.log.Error("slack: socket mode connection failed; retrying", "err", err, "retry_in", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(2*delay, time.Minute)
	}
}

// socketEvents reads the client's events: interactive envelopes are
// acknowledged, de-duplicated by envelope id, then dispatched to the same
// click handling as HTTP interactions.
func (h *Handler) socketEvents(ctx context.Context, client *socketmode.Client) {
	for {
		var ev socketmode.Event
		select {
		case <-ctx.Done():
			return
		case ev = <-client.Events:
		}
		switch ev.Type {
		case socketmode.EventTypeInteractive:
			if ev.Request != nil {
				if err := client.AckCtx(ctx, ev.Request.EnvelopeID, nil); err != nil {
					h.log.Warn("slack: socket mode ack failed", "err", err)
				}
			}
			cb, ok := ev.Data.(slackgo.InteractionCallback)
			if !ok {
				continue
			}
			if ev.Request != nil && ev.Request.EnvelopeID != "" {
				replay, err := h.guard.Seen(ctx, ReplayNamespace, "envelope:"+ev.Request.EnvelopeID, time.Now().Add(replayWindow))
				if err != nil {
					h.log.Error("slack: replay guard unavailable; interaction dropped", "err", err)
					continue
				}
				if replay {
					h.log.Warn("slack: redelivered socket mode envelope ignored", "envelope", ev.Request.EnvelopeID)
					continue
				}
			}
			h.dispatchClick(cb)
		case socketmode.EventTypeEventsAPI, socketmode.EventTypeSlashCommand:
			if ev.Request != nil {
				_ = client.AckCtx(ctx, ev.Request.EnvelopeID, nil)
			}
		case socketmode.EventTypeConnected:
			h.log.Info("slack: socket mode connected")
		case socketmode.EventTypeInvalidAuth:
			h.log.Error("slack: socket mode: the app token was refused")
		case socketmode.EventTypeConnectionError:
			h.log.Warn("slack: socket mode connection error")
		}
	}
}

// slogOutput routes slack-go's socketmode log lines to the handler's logger.
type slogOutput struct{ l *slog.Logger }

func (o slogOutput) Output(_ int, s string) error {
	o.l.Debug(strings.TrimSpace(s), "component", "socketmode")
	return nil
}
