package app

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/rekeyhq/rekey/auth"
)

// Readiness refresh: every readyEvery while every check passes, every
// retryEvery while one fails (and until the first round completes).
var (
	readyEvery = 30 * time.Second
	retryEvery = 5 * time.Second
)

// readiness caches the dependency checks (one target per sink, one check
// per adapter) refreshed in the background, for /readyz and for the
// scheduler, which starts new rotations only once the dependencies they
// need (store, issuers, sinks) answered: a daemon whose issuer is
// unreachable does not start minting blindly.
type readiness struct {
	mu      sync.Mutex
	results []CheckResult
	at      time.Time
	// needed is closed once every needed check passed in one round.
	needed     chan struct{}
	neededOnce sync.Once
	every      time.Duration
	retry      time.Duration
}

func newReadiness() *readiness {
	return &readiness{needed: make(chan struct{}), every: readyEvery, retry: retryEvery}
}

// run refreshes the checks until ctx ends.
func (rd *readiness) run(ctx context.Context, d *Daemon) {
	failing := map[string]bool{}
	for {
		res := d.CheckDependencies(ctx, false)
		if ctx.Err() != nil {
			return
		}
		ok, neededOK := true, true
		for _, r := range res {
			if r.OK {
				if failing[r.Name] {
					d.Logger.Info("dependency check passes again", "check", r.Name)
					delete(failing, r.Name)
				}
				continue
			}
			ok = false
			neededOK = neededOK && !r.needed
			if !failing[r.Name] {
				failing[r.Name] = true
				d.Logger.Warn("dependency check failed", "check", r.Name, "needed", r.needed, "err", r.Detail, "fix", r.Fix)
			}
		}
		rd.mu.Lock()
		rd.results, rd.at = res, time.Now()
		rd.mu.Unlock()
		if neededOK {
			rd.neededOnce.Do(func() { close(rd.needed) })
		}
		wait := rd.every
		if !ok {
			wait = rd.retry
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// waitNeeded blocks until the needed dependencies first answered, or ctx
// ends (false).
func (rd *readiness) waitNeeded(ctx context.Context) bool {
	select {
	case <-rd.needed:
		return true
	case <-ctx.Done():
		return false
	}
}

// readyView is the /readyz body: each check by name, without secrets
// (adapters' errors never carry one); detail only on the admin listener.
type readyView struct {
	Status    string       `json:"status"`
	CheckedAt string       `json:"checked_at,omitempty"`
	Checks    []checkState `json:"checks"`
}

type checkState struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
	Fix    string `json:"fix,omitempty"`
}

// ready answers /readyz: 200 when the store answers now and every cached
// dependency check passed in its last round; 503 otherwise, and before the
// first round.
func (d *Daemon) readyHandler(detailed bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		show := false
		if detailed {
			var ok bool
			if show, ok = d.readyDetail(w, r); !ok {
				return
			}
		}
		v := readyView{Status: "ready", Checks: []checkState{}}
		if err := d.storeReady(r.Context()); err != nil {
			v.Status = "store unavailable"
			v.Checks = append(v.Checks, checkState{Name: "store", OK: false})
			writeJSON(w, http.StatusServiceUnavailable, v)
			return
		}
		if d.readiness != nil {
			d.readiness.mu.Lock()
			res, at := d.readiness.results, d.readiness.at
			d.readiness.mu.Unlock()
			if at.IsZero() {
				v.Status = "checking dependencies"
			} else {
				v.CheckedAt = rfc3339(at)
			}
			for _, c := range res {
				cs := checkState{Name: c.Name, OK: c.OK}
				if show {
					cs.Detail, cs.Fix = c.Detail, c.Fix
				}
				v.Checks = append(v.Checks, cs)
				if !c.OK {
					v.Status = "not ready"
				}
			}
		}
		code := http.StatusOK
		if v.Status != "ready" {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, v)
	}
}

// readyDetail reports whether r may read each check's detail and fix
// (they name hosts, paths and configuration): a principal who may read,
// on the admin listener. A probe without credentials gets the status and
// the checks' names; a request with a bad credential counts against its
// address like any failed authentication, so that /readyz is no oracle
// for guessing tokens. ok is false when an answer was already written
// (throttled, credentials not checkable).
func (d *Daemon) readyDetail(w http.ResponseWriter, r *http.Request) (show, ok bool) {
	if r.Header.Get("Authorization") == "" && (r.TLS == nil || len(r.TLS.PeerCertificates) == 0) {
		return false, true
	}
	p, ok := d.authenticate(w, r)
	if !ok {
		return false, false
	}
	return p != nil && p.Can(auth.ActRead, auth.Key{}), true
}
