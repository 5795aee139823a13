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

// Start connects to Slack over Socket Mode (mode socket) and handles button
// clicks until ctx ends or Close is called; each envelope is acknowledged
// first, then handled in the background like an HTTP interaction. The
// connection is re-established with backoff when it fails. In mode http it
// does nothing.
func (n *Notifier) Start(ctx context.Context) error {
	if n.cfg.Mode != ModeSocket {
		return nil
	}
	n.mu.Lock()
	switch {
	case n.closed:
		n.mu.Unlock()
		return errors.New("slack: start after close")
	case n.started:
		n.mu.Unlock()
		return errors.New("slack: already started")
	}
	n.started = true
	n.wg.Add(1)
	n.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-n.closing:
		case <-ctx.Done():
		}
		cancel()
	}()
	go func() {
		defer n.wg.Done()
		defer cancel()
		n.runSocket(ctx)
	}()
	return nil
}

// runSocket keeps a Socket Mode connection up until ctx ends.
func (n *Notifier) runSocket(ctx context.Context) {
	delay := time.Second
	for ctx.Err() == nil {
		client := socketmode.New(n.api, socketmode.OptionLog(slogOutput{n.logger}))
		evCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			n.socketEvents(evCtx, client)
		}()
		err := client.RunContext(ctx)
		stop()
		<-done
		if ctx.Err() != nil {
			return
		}
		n.logger.Error("slack: socket mode connection failed; retrying", "err", err, "retry_in", delay)
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
// acknowledged, de-duplicated by envelope id, then dispatched.
func (n *Notifier) socketEvents(ctx context.Context, client *socketmode.Client) {
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
					n.logger.Warn("slack: socket mode ack failed", "err", err)
				}
			}
			cb, ok := ev.Data.(slackgo.InteractionCallback)
			if !ok {
				continue
			}
			if ev.Request != nil && ev.Request.EnvelopeID != "" {
				replay, err := n.guard.Seen(ctx, ReplayNamespace, "envelope:"+ev.Request.EnvelopeID, time.Now().Add(replayWindow))
				if err != nil {
					n.logger.Error("slack: replay guard unavailable; interaction dropped", "err", err)
					continue
				}
				if replay {
					n.logger.Warn("slack: redelivered socket mode envelope ignored", "envelope", ev.Request.EnvelopeID)
					continue
				}
			}
			n.dispatchClick(cb)
		case socketmode.EventTypeEventsAPI, socketmode.EventTypeSlashCommand:
			if ev.Request != nil {
				_ = client.AckCtx(ctx, ev.Request.EnvelopeID, nil)
			}
		case socketmode.EventTypeConnected:
			n.logger.Info("slack: socket mode connected")
		case socketmode.EventTypeInvalidAuth:
			n.logger.Error("slack: socket mode: the app token was refused")
		case socketmode.EventTypeConnectionError:
			n.logger.Warn("slack: socket mode connection error")
		}
	}
}

// slogOutput routes slack-go's socketmode log lines to the notifier's logger.
type slogOutput struct{ l *slog.Logger }

func (o slogOutput) Output(_ int, s string) error {
	o.l.Debug(strings.TrimSpace(s), "component", "socketmode")
	return nil
}
