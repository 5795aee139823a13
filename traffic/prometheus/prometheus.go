// Package prometheus is the traffic source that asks a Prometheus HTTP API
// (or anything that speaks it: Thanos, Mimir, VictoriaMetrics) how many
// requests still fail authentication: it renders a PromQL template with the
// key's names and ids, runs it as an instant query and reports the sum of
// the resulting vector (or the scalar) as the 401 rate. Nothing that is not
// a definite, finite, non-negative number is reported as a rate: an empty
// result (unless empty_is_zero), NaN, a range, warnings about partial data,
// an unreachable or paused server are errors, so the drain gate never passes
// on silence. Names and ids reach the query only through the promql escaping
// function, so a credential name cannot rewrite it.
package prometheus

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/prometheus/common/model"

	"github.com/rekeyhq/rekey/internal/secretref"
	"github.com/rekeyhq/rekey/rotator"
)

// Source runs the configured query against a Prometheus server.
type Source struct {
	log         *slog.Logger
	client      *http.Client
	endpoint    *url.URL // <url>/api/v1/query
	timeout     time.Duration
	window      string // PromQL duration
	emptyIsZero bool
	headers     map[string]string

	bearer        secretref.Ref
	basicUser     string
	basicPassword secretref.Ref

	defaultQuery *template.Template // nil: every key must set drain.query
	defaultOld   *template.Template // nil: every key asking about old-key use must set drain.old_key_query
	windowDur    time.Duration

	mu           sync.Mutex
	templates    map[string]parsed    // per-key queries, by text
	failingSince map[string]time.Time // key/question → first of a run of execution errors
	now          func() time.Time
}

type parsed struct {
	t   *template.Template
	err error
}

// New checks cfg and builds the source. Credentials are read once here, so
// that a missing variable or file fails at start-up, and again before every
// query.
func New(cfg Config, logger *slog.Logger) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	log := logger.With("traffic", "prometheus")
	base, _ := url.Parse(cfg.URL) // validated
	endpoint := base.JoinPath("api", "v1", "query")
	client, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	s := &Source{
		log:           log,
		client:        client,
		endpoint:      endpoint,
		timeout:       cfg.Timeout,
		window:        model.Duration(cfg.Window).String(),
		windowDur:     cfg.Window,
		emptyIsZero:   cfg.EmptyIsZero,
		headers:       map[string]string{},
		bearer:        cfg.bearerRef(),
		basicUser:     cfg.BasicAuth.Username,
		basicPassword: cfg.BasicAuth.passwordRef(),
		templates:     map[string]parsed{},
		failingSince:  map[string]time.Time{},
		now:           time.Now,
	}
	for k, v := range cfg.Headers {
		s.headers[http.CanonicalHeaderKey(k)] = v
	}
	if cfg.Query != "" {
		s.defaultQuery, _ = parseQuery("query", cfg.Query) // validated
	}
	if cfg.OldKeyQuery != "" {
		s.defaultOld, _ = parseQuery("old_key_query", cfg.OldKeyQuery) // validated
	}
	if _, err := s.bearer.Resolve(); err != nil {
		return nil, fmt.Errorf("bearer_token: %w", err)
	}
	if s.basicUser != "" {
		if _, err := s.basicPassword.Resolve(); err != nil {
			return nil, fmt.Errorf("basic_auth.password: %w", err)
		}
	}
	if cfg.InsecureSkipVerify {
		log.Warn("TLS certificate verification is disabled: anyone on the path to Prometheus can answer for it")
	}
	if cfg.EmptyIsZero {
		log.Warn("empty_is_zero is set: a query that matches no series reads as zero 401s, so a typo in it would let the drain gate pass")
	}
	return s, nil
}

// Unauthorized renders the key's query for the question asked (q.Query,
// else the configured default: old_key_query for old-key use, query
// otherwise), runs it at Prometheus' current time and reports the sum of
// the vector or the scalar. With q.NotBefore set, {{.Window}} is cut so
// that the range starts no earlier than it.
func (s *Source) Unauthorized(ctx context.Context, q rotator.TrafficQuery) (rotator.Reading, error) {
	t, err := s.template(q.Query, q.Question == rotator.OldKeyUse)
	if err != nil {
		return rotator.Reading{}, rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("prometheus: key %s: %w", q.Key, err))
	}
	window := s.window
	if !q.NotBefore.IsZero() {
		since := s.now().Sub(q.NotBefore).Truncate(time.Millisecond)
		if since < time.Millisecond {
			return rotator.Reading{}, rotator.WithReason(rotator.ReasonTransient, fmt.Errorf("prometheus: key %s: no traffic since %s to count yet", q.Key, q.NotBefore.UTC().Format(time.RFC3339Nano)))
		}
		if since < s.windowDur {
			window = model.Duration(since).String()
		}
	}
	d := Data{Key: q.Key, OldID: q.OldID, NewID: q.NewID, OldName: q.OldName, NewName: q.NewName, Window: window}
	if !q.Since.IsZero() {
		d.Since = q.Since.Unix()
	}
	query, err := render(t, d)
	if err != nil {
		return rotator.Reading{}, rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("prometheus: key %s: %w", q.Key, err))
	}
	what := fmt.Sprintf("prometheus: key %s: query %s", q.Key, clip(query, 200))
	r, err := s.instantQuery(ctx, what, query)
	if err = s.judgeExecution(q.Key+"/"+string(q.Question), err); err != nil {
		return rotator.Reading{}, err
	}
	at := r.at
	if at.IsZero() {
		at = s.now()
	}
	if r.kind == "vector" && r.series == 0 {
		if !s.emptyIsZero {
			return rotator.Reading{}, rotator.WithReason(rotator.ReasonInvalid,
				fmt.Errorf("%s: no series matched: an empty result is not zero (check metric and label names, or set empty_is_zero if the counter only exists after its first 401)", what))
		}
		return rotator.Reading{Value: 0, At: at, Query: query,
			Detail: fmt.Sprintf("query %s: no series matched, reported as zero (empty_is_zero)", clip(query, 200))}, nil
	}
	var detail string
	if r.kind == "scalar" {
		detail = fmt.Sprintf("query %s: scalar %g", clip(query, 200), r.value)
	} else {
		detail = fmt.Sprintf("query %s: %d series, sum %g", clip(query, 200), r.series, r.value)
	}
	s.log.DebugContext(ctx, "query answered", "key", q.Key, "value", r.value, "series", r.series)
	return rotator.Reading{Value: r.value, At: at, Detail: detail, Query: query}, nil
}

// template returns the parsed per-key query, or the default when text is
// empty (old_key_query when old is set). Per-key templates are parsed (and
// checked) once.
func (s *Source) template(text string, old bool) (*template.Template, error) {
	if strings.TrimSpace(text) == "" {
		switch {
		case old && s.defaultOld == nil:
			return nil, fmt.Errorf("no old-key query: set drain.old_key_query on the key or old_key_query on the source")
		case old:
			return s.defaultOld, nil
		case s.defaultQuery == nil:
			return nil, fmt.Errorf("no query: set drain.query on the key or query on the source")
		}
		return s.defaultQuery, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.templates[text]
	if !ok {
		p.t, p.err = parseQuery("drain.query", text)
		if p.err != nil {
			p.err = fmt.Errorf("drain.query: %w", p.err)
		}
		s.templates[text] = p
	}
	return p.t, p.err
}

var _ rotator.TrafficSource = (*Source)(nil)

// Check proves the source answers: it runs the constant query vector(1)
// with the configured credentials. It reads nothing of any key (a key's
// own query may match no series until its first 401, which is not the
// source being down).
func (s *Source) Check(ctx context.Context) error {
	_, err := s.instantQuery(ctx, "prometheus: check", "vector(1)")
	return err
}

var _ rotator.Checker = (*Source)(nil)
