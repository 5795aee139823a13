package rotator

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Retention bounds what rekey keeps besides the audit trail (which is
// never pruned). A negative duration keeps forever.
type Retention struct {
	Outbox  time.Duration // delivered or given-up notifications
	Inbound time.Duration // processed inbound reports (and their replay ids)
	// Digest is the window over which reports that match no credential
	// are counted into one notification per source.
	Digest time.Duration
}

// DefaultRetention keeps a week of delivered notifications (enough to
// answer "was I told?") and a month of processed reports, and digests
// unmatched reports every 15 minutes.
var DefaultRetention = Retention{Outbox: 7 * 24 * time.Hour, Inbound: 30 * 24 * time.Hour, Digest: 15 * time.Minute}

const (
	stateDigest = "rekey.digest"
	pruneEvery  = time.Hour
)

// digest counts unmatched reports of one source within a window.
type digest struct {
	Count  int       `json:"count"`
	First  time.Time `json:"first,omitzero"`
	Last   time.Time `json:"last,omitzero"`
	Sample string    `json:"sample,omitempty"` // where the first one was seen
}

// unmatched counts a report that matched no live credential: noise is
// digested, never echoed one message (and one audit event) per report.
func (e *Engine) unmatched(ctx context.Context, r ExposureReport, where string) error {
	src := cmpOr(r.Via, "unknown") + "/" + cmpOr(r.Source, "-")
	e.digestMu.Lock()
	defer e.digestMu.Unlock()
	d := e.loadDigest(ctx, src)
	if d.Count == 0 {
		d.First, d.Sample = e.clock.Now(), where
	}
	d.Count++
	d.Last = e.clock.Now()
	return e.saveDigest(ctx, src, d)
}

func (e *Engine) loadDigest(ctx context.Context, src string) digest {
	var d digest
	if e.state == nil {
		return e.digests[src]
	}
	if v, ok, err := e.state.GetState(ctx, stateDigest, src); err == nil && ok {
		_ = json.Unmarshal([]byte(v), &d)
	}
	return d
}

func (e *Engine) saveDigest(ctx context.Context, src string, d digest) error {
	if e.state == nil {
		e.digests[src] = d
		return nil
	}
	b, _ := json.Marshal(d)
	return e.state.PutState(ctx, stateDigest, src, string(b))
}

// flushDigests sends one notification (and one audit event) per source
// whose window is over.
func (e *Engine) flushDigests(ctx context.Context) {
	now := e.clock.Now()
	e.digestMu.Lock()
	defer e.digestMu.Unlock()
	all := map[string]digest{}
	switch l, ok := e.state.(StateLister); {
	case e.state == nil:
		for k, v := range e.digests {
			all[k] = v
		}
	case ok:
		m, err := l.ListState(ctx, stateDigest)
		if err != nil {
			return
		}
		for k, v := range m {
			var d digest
			if json.Unmarshal([]byte(v), &d) == nil {
				all[k] = d
			}
		}
	default:
		return
	}
	srcs := make([]string, 0, len(all))
	for s := range all {
		srcs = append(srcs, s)
	}
	sort.Strings(srcs)
	for _, src := range srcs {
		d := all[src]
		if d.Count == 0 || now.Sub(d.First) < e.retention.Digest {
			continue
		}
		via, source, _ := strings.Cut(src, "/")
		msg := fmt.Sprintf("%d exposure report(s) from %s (%s) matched no live credential between %s and %s (first at %s); recorded, not acted on",
			d.Count, via, source, d.First.UTC().Format(time.RFC3339), d.Last.UTC().Format(time.RFC3339), d.Sample)
		fields := map[string]string{"count": fmt.Sprint(d.Count), "via": via, "source": source}
		if err := e.record(ctx, nil, []AuditEvent{{At: now, Actor: "exposure:" + via, Action: "exposure.unmatched", Detail: fields}},
			Event{Kind: EventDigest, Severity: SeverityWarning, Message: msg, Fields: fields}); err != nil {
			e.log.Warn("send exposure digest", "source", src, "err", err)
			continue
		}
		_ = e.saveDigest(ctx, src, digest{})
	}
}

// gauges refreshes the gauges read from the store (held rotations, the
// outbox backlog), so they count whoever drove the work.
// keyAgesEvery bounds how often the key-age gauges are read from the
// store; an age is in days, a scrape every 15–60 s.
const keyAgesEvery = 30 * time.Second

func (e *Engine) gauges(ctx context.Context) {
	now := e.clock.Now()
	if active, err := e.store.ListRotations(ctx, RotationFilter{ActiveOnly: true}); err == nil {
		e.metrics.heldRotations(active, now)
		e.metrics.activeRotations(active)
	}
	e.keyAges(ctx, now)
	if os, ok := e.store.(OutboxStats); ok {
		if n, oldest, err := os.OutboxBacklog(ctx); err == nil {
			age := time.Duration(0)
			if n > 0 && !oldest.IsZero() {
				age = e.clock.Now().Sub(oldest)
			}
			e.metrics.outbox(n, age)
		}
	}
}

// prune applies the retention, at most once an hour.
func (e *Engine) prune(ctx context.Context) {
	p, ok := e.store.(Pruner)
	now := e.clock.Now()
	if !ok || now.Sub(e.lastPrune) < pruneEvery {
		return
	}
	e.lastPrune = now
	var ob, ib time.Time
	if e.retention.Outbox > 0 {
		ob = now.Add(-e.retention.Outbox)
	}
	if e.retention.Inbound > 0 {
		ib = now.Add(-e.retention.Inbound)
	}
	if n, err := p.Prune(ctx, ob, ib); err != nil {
		e.log.Warn("apply retention", "err", err)
	} else if n > 0 {
		e.log.Info("retention applied", "rows", n)
	}
}

// keyAges sets the key-age gauges from the store, so they are there from
// the start and follow rotations driven elsewhere (another daemon, the
// break-glass CLI). An age is counted in days and reading them is O(keys):
// once every keyAgesEvery, not with the cheap gauges each second (over
// 10,000 keys a read each second made the tail of the exposure latency).
func (e *Engine) keyAges(ctx context.Context, now time.Time) {
	last := e.lastKeyAges.Load()
	fresh := last != 0 && now.UnixNano() >= last && now.UnixNano()-last < int64(keyAgesEvery)
	if fresh || !e.lastKeyAges.CompareAndSwap(last, now.UnixNano()) {
		return // or another scan reads them now
	}
	states, err := e.store.KeyStates(ctx)
	if err != nil {
		return
	}
	for name, st := range states {
		if _, ok := e.keys[name]; ok && st.Current != nil {
			e.metrics.KeyAge(name, now.Sub(st.Current.CreatedAt))
		}
	}
}
