package slack

import (
	"context"
	"errors"
	"fmt"
	"strings"

	slackgo "github.com/slack-go/slack"
)

// Check makes read-only calls that prove the notifier can deliver: the bot
// token authenticates (auth.test) and every configured channel exists and
// is visible to the bot (conversations.info for an id; conversations.list
// for a #name). It posts nothing.
func (n *Notifier) Check(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	if _, err := n.api.AuthTestContext(cctx); err != nil {
		return fmt.Errorf("slack: auth.test: %w", err)
	}
	var errs []error
	var names []string
	for _, ch := range n.channels() {
		if name, ok := strings.CutPrefix(ch, "#"); ok {
			names = append(names, name)
			continue
		}
		if _, err := n.api.GetConversationInfoContext(cctx, &slackgo.GetConversationInfoInput{ChannelID: ch}); err != nil {
			errs = append(errs, fmt.Errorf("slack: channel %s: conversations.info: %w", ch, err))
		}
	}
	if len(names) > 0 {
		errs = append(errs, n.checkNames(cctx, names))
	}
	return errors.Join(errs...)
}

// checkNames finds each #name among the conversations the bot can see.
func (n *Notifier) checkNames(ctx context.Context, names []string) error {
	missing := map[string]bool{}
	for _, name := range names {
		missing[name] = true
	}
	params := &slackgo.GetConversationsParameters{ExcludeArchived: true, Limit: 1000, Types: []string{"public_channel", "private_channel"}}
	for range 20 { // 20 000 channels at most
		chans, cursor, err := n.api.GetConversationsContext(ctx, params)
		if err != nil {
			return fmt.Errorf("slack: conversations.list: %w", err)
		}
		for _, c := range chans {
			delete(missing, c.Name)
		}
		if len(missing) == 0 || cursor == "" {
			break
		}
		params.Cursor = cursor
	}
	var errs []error
	for _, name := range names {
		if missing[name] {
			errs = append(errs, fmt.Errorf("slack: channel #%s not found among the channels the bot can see", name))
		}
	}
	return errors.Join(errs...)
}

// channels are the distinct channels the configuration routes to.
func (n *Notifier) channels() []string {
	var out []string
	seen := map[string]bool{}
	for _, ch := range append([]string{n.cfg.Channel}, routeChannels(n.cfg.Channels)...) {
		if ch != "" && !seen[ch] {
			seen[ch] = true
			out = append(out, ch)
		}
	}
	return out
}

func routeChannels(rs []Route) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.Channel)
	}
	return out
}
