package app

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rekeyhq/rekey/config"
	"github.com/rekeyhq/rekey/store/sqlstore"
)

// Store outages. The daemon starts without its store and waits for it;
// while the store does not answer, every admin API answer is 503 with a
// short message that names no database, user or host (the driver's error,
// which does, goes to the log only), and the log backs off instead of
// repeating every poll.

// msgStoreDown is all a client learns of a store outage.
const msgStoreDown = "the store is unavailable; try again shortly"

// swapHandler serves the handler set last: the waiting handler until the
// daemon is built, then the daemon's.
type swapHandler struct{ h atomic.Pointer[http.Handler] }

func newSwapHandler(h http.Handler) *swapHandler {
	s := &swapHandler{}
	s.set(h)
	return s
}

func (s *swapHandler) set(h http.Handler) { s.h.Store(&h) }

func (s *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.h.Load()).ServeHTTP(w, r)
}

// waitingHandler serves while the daemon waits for its store: alive
// (/healthz 200, status "waiting for the store"), not ready (/readyz 503),
// and 503 for everything else.
func waitingHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "waiting for the store"})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "waiting for the store", "error": msgStoreDown})
	})
	return securityHeaders(mux)
}

// Backoff of the start-up wait for the store.
const (
	storeWaitMin = 500 * time.Millisecond
	storeWaitMax = 30 * time.Second
)

// buildWhenReachable builds the daemon, waiting with backoff while the
// store cannot be reached (any other error ends the start). Each failure is
// logged, less often as the wait grows.
func buildWhenReachable(ctx context.Context, cfg *config.Config, logger *slog.Logger, o BuildOptions) (*Daemon, error) {
	wait, since, attempts := storeWaitMin, time.Now(), 0
	nextLog := time.Time{}
	for {
		d, err := Build(ctx, cfg, logger, o)
		if err == nil || !errors.Is(err, sqlstore.ErrUnreachable) {
			if err == nil && attempts > 0 {
				logger.Info("store reachable: starting", "waited", time.Since(since).Round(time.Millisecond).String(), "attempts", attempts+1)
			}
			return d, err
		}
		attempts++
		if now := time.Now(); !now.Before(nextLog) {
			logger.Warn("store unreachable; waiting for it (not ready meanwhile)", "store", cfg.Store.Type, "err", err,
				"attempts", attempts, "retry_in", wait.String())
			nextLog = now.Add(min(time.Duration(attempts)*storeWaitMin*4, 5*time.Minute))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, storeWaitMax)
	}
}

// storeReady is the store's part of readiness: it answers within 2s.
func (d *Daemon) storeReady(ctx context.Context) error {
	return d.ping.do(time.Now(), func() error { return d.pingStore(ctx) })
}

// pingStore asks the store now (an answer that failed already wants the
// store's state at this moment, not a second ago).
func (d *Daemon) pingStore(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return d.Store.Ping(ctx)
}

// pingCache answers from the last ping for pingFresh; callers in the
// meantime wait for the one ping in flight rather than starting their own.
type pingCache struct {
	mu  sync.Mutex
	at  time.Time
	err error
}

const pingFresh = time.Second

func (c *pingCache) do(now time.Time, ping func() error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && now.Sub(c.at) < pingFresh && now.Sub(c.at) >= 0 {
		return c.err
	}
	c.err, c.at = ping(), now
	return c.err
}

// fail answers err: a fixed text for the engine's and the store's errors
// (not found, conflict, already decided…), or the engine's own refusal
// (self-approval, not in this state…), prefixed by what; for anything
// else — which may carry driver text naming the database, its user or
// host — a generic answer: 503 while the store does not answer, 500
// otherwise. The full error goes to the log only.
func (d *Daemon) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	if st, msg := d.clientError(r, strings.TrimSuffix(what, ": "), err); st != http.StatusInternalServerError {
		writeError(w, st, msg)
		return
	}
	if d.pingStore(r.Context()) != nil {
		d.Logger.Warn("admin api: store unavailable", "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, msgStoreDown)
		return
	}
	d.Logger.Error("admin api: internal error", "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, "internal error (the daemon's log has the details)")
}
