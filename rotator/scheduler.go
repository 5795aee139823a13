package rotator

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/robfig/cron/v3"
)

// ScheduleOptions configure when policies are evaluated.
type ScheduleOptions struct {
	// Spec is the daemon-wide cron spec (robfig/cron syntax, with optional
	// seconds and descriptors such as "@every 1m").
	Spec string
	// KeySpecs override Spec for single keys.
	KeySpecs map[string]string
	// Jitter delays each evaluation by a random duration up to Jitter, so
	// that many daemons or keys do not hit issuers at the same instant.
	Jitter time.Duration
}

var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Schedule evaluates policies on the configured schedules until ctx ends.
// It evaluates once at start (after jitter), so a restarted daemon does not
// wait a full period.
func (e *Engine) Schedule(ctx context.Context, o ScheduleOptions) error {
	c := cron.New(cron.WithParser(cronParser), cron.WithChain(cron.SkipIfStillRunning(cron.DiscardLogger)))
	var global []string
	for _, name := range e.keyOrder {
		if spec, ok := o.KeySpecs[name]; ok && spec != "" {
			name := name
			if _, err := c.AddFunc(spec, func() { e.evaluateJittered(ctx, o.Jitter, name) }); err != nil {
				return err
			}
			continue
		}
		global = append(global, name)
	}
	spec := o.Spec
	if spec == "" {
		spec = "@every 1m"
	}
	if _, err := c.AddFunc(spec, func() { e.evaluateJittered(ctx, o.Jitter, global...) }); err != nil {
		return err
	}
	go e.evaluateJittered(ctx, o.Jitter, e.keyOrder...)
	c.Start()
	<-ctx.Done()
	<-c.Stop().Done()
	return nil
}

func (e *Engine) evaluateJittered(ctx context.Context, jitter time.Duration, names ...string) {
	if len(names) == 0 {
		return
	}
	// One evaluation at a time, the first pass at start included (cron's
	// SkipIfStillRunning guards only its own jobs): over many keys a pass
	// can outlast a tick, and two passes side by side double every read.
	if !e.evaluating.TryLock() {
		e.log.Debug("policy evaluation still running; this tick is skipped")
		return
	}
	defer e.evaluating.Unlock()
	if jitter > 0 {
		select {
		case <-time.After(time.Duration(rand.Int64N(int64(jitter)))):
		case <-ctx.Done():
			return
		}
	}
	if err := e.Evaluate(ctx, names...); err != nil {
		e.log.Error("evaluate policies", "err", err)
	}
}
