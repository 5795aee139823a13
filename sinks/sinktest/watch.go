package sinktest

import (
	"fmt"
	"sync"

	"github.com/rekeyhq/rekey/rotator"
)

// watcher reads the consumer-visible value in a loop while a case drives the
// sink, and records every read that is missing or not one of the allowed
// generations. A read is judged against the allowed sets in force when it
// started and when it ended, since a step may complete while it is in flight.
type watcher struct {
	c   *env
	tgt rotator.Target

	mu       sync.Mutex
	allowed  map[string]bool
	problems []string
	reads    int

	quit    chan struct{}
	done    chan struct{}
	stopped sync.Once
}

// watch starts a watcher allowing the given generations.
func (c *env) watch(tgt rotator.Target, allowed ...gen) *watcher {
	w := &watcher{c: c, tgt: tgt, quit: make(chan struct{}), done: make(chan struct{})}
	w.allow(allowed...)
	go w.loop()
	return w
}

// allow replaces the set of values a consumer may read.
func (w *watcher) allow(gs ...gen) {
	m := make(map[string]bool, len(gs))
	for _, g := range gs {
		m[g.value] = true
	}
	w.mu.Lock()
	w.allowed = m
	w.mu.Unlock()
}

func (w *watcher) snapshot() map[string]bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.allowed
}

func (w *watcher) loop() {
	defer close(w.done)
	for {
		select {
		case <-w.quit:
			return
		default:
		}
		before := w.snapshot()
		v, found, err := w.c.h.ReadCurrent(w.c.ctx, w.tgt)
		after := w.snapshot()
		w.mu.Lock()
		w.reads++
		switch {
		case err != nil:
			w.problems = append(w.problems, fmt.Sprintf("read error: %v", err))
		case !found:
			w.problems = append(w.problems, "no current value")
		case !before[v] && !after[v]:
			w.problems = append(w.problems, "unexpected current value "+short(v))
		}
		w.mu.Unlock()
	}
}

// stop ends the loop and fails the test if any read was wrong. Only the
// first call counts.
func (w *watcher) stop() {
	w.c.t.Helper()
	first := false
	w.stopped.Do(func() { first = true })
	if !first {
		return
	}
	close(w.quit)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.problems) > 0 {
		w.c.t.Errorf("a consumer reading %s concurrently saw %d bad value(s) in %d reads, first: %s", w.tgt.Path, len(w.problems), w.reads, w.problems[0])
	}
	w.c.t.Logf("concurrent consumer: %d reads of %s, all current and expected", w.reads, w.tgt.Path)
}
