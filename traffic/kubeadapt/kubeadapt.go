// Package kubeadapt is the traffic source that reads a Kubeadapt-style
// API server's own request counters, without a Prometheus in between: it
// fetches the server's /metrics page (kubeadapt_requests_total{key_id,
// key_name, code}), sums the requests attributed to the retired credential
// (by its issuer id) and/or to unidentified keys, and reports how fast that
// sum grew since its previous poll, per second. The first poll for a key and
// credential only records a baseline and is an error, like every answer that
// is not a definite rate (a counter reset to zero, an unknown key id, an
// unreachable server): the drain gate never passes on silence.
package kubeadapt

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/rekeyhq/rekey/internal/secretref"
	"github.com/rekeyhq/rekey/rotator"
)

// staleAfter is how old a baseline may be before a poll re-establishes it
// instead of averaging over the gap.
const staleAfter = time.Hour

// Source polls a Kubeadapt-style metrics endpoint.
type Source struct {
	log         *slog.Logger
	client      *http.Client
	url         *url.URL
	metric      string
	matchOld    bool
	matchUnk    bool
	countAll    bool
	emptyIsZero bool
	bearer      secretref.Ref

	mu   sync.Mutex
	base map[baseKey]baseline
	now  func() time.Time
}

// baseKey is what a rate is computed for: one rotating key's credentials
// and the question asked (ids are empty when not matched).
type baseKey struct {
	key, oldID, newID string
	question          rotator.Question
}

// selector says which series a question sums.
type selector struct {
	old, new, unknown bool
	all               bool // every answer, not only 401s
}

// selectorFor maps the drain gate's questions to series: old-key use is
// every request made with the old key's id, whatever the answer; failures
// with the new key are the 401s of the new key's id and of unidentifiable
// keys. No question asks the configured match and count.
func (s *Source) selectorFor(q rotator.Question) selector {
	switch q {
	case rotator.OldKeyUse:
		return selector{old: true, all: true}
	case rotator.NewKeyFailures:
		return selector{new: true, unknown: true}
	}
	return selector{old: s.matchOld, unknown: s.matchUnk, all: s.countAll}
}

type baseline struct {
	total float64
	at    time.Time
}

// New checks cfg and builds the source. The bearer token, when set, is
// read once here so that a missing variable or file fails at start-up, and
// again before every scrape.
func New(cfg Config, logger *slog.Logger) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	u, _ := url.Parse(cfg.URL) // validated
	if u.Path == "" || u.Path == "/" {
		u = u.JoinPath("metrics")
	}
	client, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	s := &Source{
		log:         logger.With("traffic", "kubeadapt"),
		client:      client,
		url:         u,
		metric:      cfg.Metric,
		matchOld:    slices.Contains(cfg.Match, MatchOldID),
		matchUnk:    slices.Contains(cfg.Match, MatchUnknown),
		countAll:    cfg.Count == CountRequests,
		emptyIsZero: cfg.EmptyIsZero,
		bearer:      cfg.bearerRef(),
		base:        map[baseKey]baseline{},
		now:         time.Now,
	}
	if _, err := s.bearer.Resolve(); err != nil {
		return nil, fmt.Errorf("bearer_token: %w", err)
	}
	if cfg.EmptyIsZero {
		s.log.Warn("empty_is_zero is set: a key id the server has never seen reads as zero, so a wrong id would let the drain gate pass")
	}
	return s, nil
}

// Unauthorized scrapes the server and reports the per-second growth, since
// the previous poll for the same key and old credential, of the matched
// requests. The first poll (or one after an hour's gap) establishes the
// baseline and returns an error.
func (s *Source) Unauthorized(ctx context.Context, q rotator.TrafficQuery) (rotator.Reading, error) {
	what := "kubeadapt: key " + q.Key
	sel := s.selectorFor(q.Question)
	if sel.old && q.OldID == "" {
		return rotator.Reading{}, rotator.PermanentReason(rotator.ReasonInvalid,
			fmt.Errorf("%s: no issuer id recorded for the old credential %s: match old_id needs one", what, q.OldName))
	}
	fams, err := s.scrape(ctx, what)
	if err != nil {
		return rotator.Reading{}, err
	}
	total, n, err := s.sum(fams, q, sel, what)
	if err != nil {
		return rotator.Reading{}, err
	}
	now := s.now()
	bk := baseKey{key: q.Key, question: q.Question}
	if sel.old {
		bk.oldID = q.OldID
	}
	if sel.new {
		bk.newID = q.NewID
	}

	s.mu.Lock()
	prev, ok := s.base[bk]
	if ok && now.Sub(prev.at) <= 0 {
		s.mu.Unlock()
		return rotator.Reading{}, rotator.WithReason(rotator.ReasonTransient, fmt.Errorf("%s: polled again at the same instant; no rate yet", what))
	}
	s.base[bk] = baseline{total: total, at: now}
	for k, b := range s.base {
		if now.Sub(b.at) > staleAfter {
			delete(s.base, k)
		}
	}
	s.mu.Unlock()

	subject := describe(q, sel)
	if !ok || now.Sub(prev.at) > staleAfter || prev.at.Before(q.NotBefore) {
		// A baseline from before NotBefore would count requests made
		// before it (the post-revoke watch): start again from now.
		return rotator.Reading{}, rotator.WithReason(rotator.ReasonTransient,
			fmt.Errorf("%s: baseline established (%g %s for %s in %d series); the rate is known from the next poll", what, total, sel.unit(), subject, n))
	}
	elapsed := now.Sub(prev.at)
	delta := total - prev.total
	if delta < 0 {
		// The server restarted and its counters began again. What it
		// counted since is a lower bound of what happened.
		if total == 0 {
			return rotator.Reading{}, rotator.WithReason(rotator.ReasonTransient,
				fmt.Errorf("%s: counters reset (%g → 0 %s for %s): baseline re-established", what, prev.total, sel.unit(), subject))
		}
		delta = total
	}
	rate := delta / elapsed.Seconds()
	detail := fmt.Sprintf("kubeadapt %s: %g %s for %s in %s (%.3g/s)", s.url.Redacted(), delta, sel.unit(), subject, elapsed.Round(time.Millisecond), rate)
	if total < prev.total {
		detail += ", counters were reset: a lower bound"
	}
	return rotator.Reading{Value: rate, At: now, Detail: detail, Query: fmt.Sprintf("%s at %s: %s for %s", s.metric, s.url.Redacted(), sel.unit(), subject)}, nil
}

// sum adds the matched series of the counter. Without empty_is_zero, a
// missing counter, or no series at all for the old key id, is an error.
func (s *Source) sum(fams map[string]*dto.MetricFamily, q rotator.TrafficQuery, sel selector, what string) (float64, int, error) {
	mf := fams[s.metric]
	if mf == nil {
		if s.emptyIsZero {
			return 0, 0, nil
		}
		return 0, 0, rotator.WithReason(rotator.ReasonInvalid,
			fmt.Errorf("%s: %s exposes no %s: check url and metric (or set empty_is_zero if the server has served no request yet)", what, s.url.Redacted(), s.metric))
	}
	var total float64
	n := 0
	oldSeen := false
	for _, m := range mf.GetMetric() {
		v, ok := counterValue(mf, m)
		if !ok {
			return 0, 0, rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("%s: %s is a %s, want a counter", what, s.metric, strings.ToLower(mf.GetType().String())))
		}
		id := label(m, "key_id")
		isOld := sel.old && id == q.OldID
		oldSeen = oldSeen || isOld
		if !isOld && !(sel.unknown && id == UnknownKeyID) && !(sel.new && q.NewID != "" && id == q.NewID) {
			continue
		}
		if !sel.all && label(m, "code") != "401" {
			continue
		}
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return 0, 0, rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("%s: %s for key_id %s has value %g: not a counter", what, s.metric, id, v))
		}
		total += v
		n++
	}
	if sel.old && !oldSeen && !s.emptyIsZero {
		return 0, 0, rotator.WithReason(rotator.ReasonInvalid,
			fmt.Errorf("%s: no %s series for key_id %q (%s): the server has not seen this key since it started, or the id is not the server's (set empty_is_zero to read this as zero)",
				what, s.metric, q.OldID, q.OldName))
	}
	return total, n, nil
}

// describe names what is counted, for messages.
func describe(q rotator.TrafficQuery, sel selector) string {
	var parts []string
	named := func(id, name string) string {
		p := "key_id " + id
		if name != "" {
			p += " (" + name + ")"
		}
		return p
	}
	if sel.old {
		parts = append(parts, named(q.OldID, q.OldName))
	}
	if sel.new && q.NewID != "" {
		parts = append(parts, named(q.NewID, q.NewName))
	}
	if sel.unknown {
		parts = append(parts, "unidentified keys")
	}
	return strings.Join(parts, " and ")
}

func (sel selector) unit() string {
	if sel.all {
		return "requests"
	}
	return "401 answers"
}

var _ rotator.TrafficSource = (*Source)(nil)

// Check proves the server answers: it scrapes its metrics once with the
// configured credentials. It sets no baseline (a drain's rate is not
// disturbed) and reads nothing of any key.
func (s *Source) Check(ctx context.Context) error {
	_, err := s.scrape(ctx, "kubeadapt: check")
	return err
}

var _ rotator.Checker = (*Source)(nil)
