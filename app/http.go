package app

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rekeyhq/rekey/auth"
	"github.com/rekeyhq/rekey/rotator"
)

// maxBody bounds every request body the admin listener reads.
const maxBody = 1 << 20

// PublicHandler serves the public listener: inbound webhooks (each
// authenticates its sender) and health. It serves no admin API and no
// metrics.
func (d *Daemon) PublicHandler() http.Handler {
	mux := http.NewServeMux()
	d.health(mux, false)
	for _, rt := range d.routes {
		mux.Handle(rt.pattern, rt.handler)
	}
	return securityHeaders(mux)
}

// AdminHandler serves the admin listener: the admin API (every request
// authenticated as a principal, every action checked against its roles),
// /metrics (behind daemon.metrics_token when set) and health.
func (d *Daemon) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	d.health(mux, true)
	mux.Handle("GET /metrics", d.metrics(promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{})))
	mux.HandleFunc("GET /v1/auth/oidc", d.oidcLogin) // unauthenticated: what `rekey login` needs
	for pattern, h := range d.adminRoutes() {
		mux.Handle(pattern, d.authenticated(h))
	}
	if d.Auth.Certs != nil {
		return securityHeaders(d.clientCerts(mux))
	}
	return securityHeaders(mux)
}

// adminRoutes is the admin API, one handler per route; the caller puts
// the principal on each request (authenticated, or BreakGlassHandler).
func (d *Daemon) adminRoutes() map[string]http.HandlerFunc {
	a := &admin{d: d}
	return map[string]http.HandlerFunc{
		"GET /v1/whoami":                   a.whoami,
		"GET /v1/keys":                     a.listKeys,
		"GET /v1/keys/{key}":               a.describeKey,
		"GET /v1/plan":                     a.plan,
		"POST /v1/keys/{key}/rotate":       a.rotate,
		"POST /v1/keys/{key}/decommission": a.decommission,
		"GET /v1/keys/{key}/consumers":     a.listConsumers,
		"POST /v1/report":                  a.report,
		"GET /v1/rotations":                a.listRotations,
		"GET /v1/rotations/{id}":           a.getRotation,
		"POST /v1/rotations/{id}/approve":  a.decide(rotator.VerdictApprove),
		"POST /v1/rotations/{id}/deny":     a.decide(rotator.VerdictDeny),
		"POST /v1/rotations/{id}/cancel":   a.cancel,
		"POST /v1/rotations/{id}/retry":    a.retry,
		"POST /v1/rotations/{id}/submit":   a.submit,
		"POST /v1/rotations/{id}/confirm":  a.confirm,
		"GET /v1/audit":                    a.audit,
		"GET /v1/audit/verify":             a.verifyAudit,
		"GET /v1/breaker":                  a.breaker,
		"POST /v1/breaker/release":         a.releaseBreaker,
		"GET /v1/tokens":                   a.listTokens,
		"POST /v1/tokens":                  a.createToken,
		"POST /v1/tokens/{id}/revoke":      a.revokeToken,
		"GET /v1/cluster":                  a.cluster,
		"POST /v1/departures/{who}/undo":   a.undoDeparture,
	}
}

// health serves /healthz and /readyz (with each check's detail and fix
// on the admin listener only).
func (d *Daemon) health(mux *http.ServeMux, detailed bool) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", d.readyHandler(detailed))
}

type principalKey struct{}

// principalOf is the principal authenticated() put on r.
func principalOf(r *http.Request) *auth.Principal {
	p, _ := r.Context().Value(principalKey{}).(*auth.Principal)
	return p
}

// authenticated admits requests whose bearer credential names a
// principal. Failures are counted per client address; an address past its
// budget gets 429 with Retry-After before its credential is even checked.
func (d *Daemon) authenticated(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := d.authenticate(w, r)
		if !ok {
			return
		}
		if p == nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="rekey"`)
			msg := "missing or invalid bearer token"
			if d.Auth.Certs != nil {
				msg = "missing or invalid credentials (bearer token or client certificate)"
			}
			writeError(w, http.StatusUnauthorized, msg)
			return
		}
		// Only for a principal who may change something: one whose roles
		// are none or viewer only gets 403 from every such request, and
		// must not grow the audit trail (which is never pruned) by sending
		// them.
		if p.Cert != nil && r.Method != http.MethodGet && r.Method != http.MethodHead && mayChange(p) {
			if err := d.auditCert(r.Context(), p, r); err != nil {
				d.Logger.Error("admin api: audit the client certificate", "err", err)
				writeError(w, http.StatusServiceUnavailable, "cannot record the client certificate in the audit trail; nothing was done")
				return
			}
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// authenticate returns the request's principal, nil when its credential
// is not valid (counted as a failure), or false after answering (throttled,
// store failure).
func (d *Daemon) authenticate(w http.ResponseWriter, r *http.Request) (*auth.Principal, bool) {
	addr := auth.ClientAddr(r)
	if wait := d.limiter.Blocked(addr); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())))
		writeError(w, http.StatusTooManyRequests, "too many failed authentications from this address; retry later")
		return nil, false
	}
	p, err := d.Auth.Authenticate(r.Context(), r)
	var left *auth.DepartedError
	switch {
	case errors.As(err, &left):
		// A valid credential of a person who left: say why, briefly.
		d.limiter.Failed(addr)
		d.Logger.Warn("admin api: credential of a person who left", "client", addr, "path", r.URL.Path, "err", err.Error())
		w.Header().Set("WWW-Authenticate", `Bearer realm="rekey"`)
		writeError(w, http.StatusUnauthorized, err.Error())
		return nil, false
	case errors.Is(err, auth.ErrUnauthenticated):
		d.limiter.Failed(addr)
		d.Logger.Warn("admin api: authentication failed", "client", addr, "path", r.URL.Path, "err", err.Error())
		return nil, true
	case err != nil:
		d.Logger.Error("admin api: authenticate", "err", err)
		writeError(w, http.StatusServiceUnavailable, "cannot check credentials right now")
		return nil, false
	}
	return p, true
}

// metrics serves h to holders of the metrics token or of a role that
// reads; without a metrics token it is open (on the admin listener).
func (d *Daemon) metrics(h http.Handler) http.Handler {
	if d.metricsToken == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cred, ok := auth.BearerCredential(r.Header.Get("Authorization")); ok && auth.Equal(cred, d.metricsToken) {
			h.ServeHTTP(w, r)
			return
		}
		p, ok := d.authenticate(w, r)
		if !ok {
			return
		}
		if p == nil || !p.Can(auth.ActRead, auth.Key{}) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="rekey-metrics"`)
			writeError(w, http.StatusUnauthorized, "/metrics requires the metrics token")
			return
		}
		h.ServeHTTP(w, r)
	})
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// statusOf maps engine errors to HTTP statuses.
func statusOf(err error) int {
	switch {
	case errors.Is(err, rotator.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, rotator.ErrActiveRotation), errors.Is(err, rotator.ErrDecided), errors.Is(err, rotator.ErrConflict),
		errors.Is(err, rotator.ErrBadState), errors.Is(err, rotator.ErrNoGate):
		return http.StatusConflict
	case errors.Is(err, rotator.ErrNotApprover), errors.Is(err, rotator.ErrSelfApproval), errors.Is(err, rotator.ErrCountedTwice),
		errors.Is(err, rotator.ErrDeparted):
		return http.StatusForbidden
	case errors.Is(err, rotator.ErrRejected):
		return http.StatusUnprocessableEntity
	}
	return http.StatusInternalServerError
}

// decodeBody reads a JSON object strictly; an empty body is an empty object.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if err.Error() == "EOF" {
			return nil
		}
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errors.New("request body too large")
		}
		return errors.New("invalid JSON body: " + err.Error())
	}
	if dec.More() {
		return errors.New("invalid JSON body: trailing data")
	}
	return nil
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// mayChange reports whether p holds any role above viewer.
func mayChange(p *auth.Principal) bool {
	for _, g := range p.Grants {
		if g.Role != auth.RoleViewer {
			return true
		}
	}
	return false
}
