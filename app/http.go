package app

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rekeyhq/rekey/rotator"
)

// maxBody bounds every request body the listener reads.
const maxBody = 1 << 20

// Handler is the one HTTP listener: health, metrics, and the admin API
// behind the bearer token (disabled when no token is configured).
func (d *Daemon) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", d.ready)
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{}))
	for _, rt := range d.routes {
		mux.Handle(rt.pattern, rt.handler)
	}
	a := &admin{d: d}
	for pattern, h := range map[string]http.HandlerFunc{
		"GET /v1/keys":                    a.listKeys,
		"GET /v1/plan":                    a.plan,
		"POST /v1/keys/{key}/rotate":      a.rotate,
		"GET /v1/rotations":               a.listRotations,
		"GET /v1/rotations/{id}":          a.getRotation,
		"POST /v1/rotations/{id}/approve": a.decide(rotator.VerdictApprove),
		"POST /v1/rotations/{id}/deny":    a.decide(rotator.VerdictDeny),
		"POST /v1/rotations/{id}/cancel":  a.cancel,
		"POST /v1/rotations/{id}/retry":   a.retry,
		"POST /v1/rotations/{id}/submit":  a.submit,
		"POST /v1/rotations/{id}/confirm": a.confirm,
		"GET /v1/audit":                   a.audit,
		"GET /v1/audit/verify":            a.verifyAudit,
		"GET /v1/breaker":                 a.breaker,
		"POST /v1/breaker/release":        a.releaseBreaker,
	} {
		mux.Handle(pattern, d.requireAdmin(h))
	}
	return securityHeaders(mux)
}

func (d *Daemon) ready(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if _, err := d.Store.KeyStates(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "store unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// requireAdmin checks the bearer token in constant time.
func (d *Daemon) requireAdmin(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.AdminToken.IsZero() {
			writeError(w, http.StatusForbidden, "the admin API is disabled: set daemon.admin_token_env or daemon.admin_token_file")
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(d.AdminToken.Reveal())) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="rekey"`)
			writeError(w, http.StatusUnauthorized, "missing or invalid bearer token")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
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
	case errors.Is(err, rotator.ErrNotApprover), errors.Is(err, rotator.ErrSelfApproval):
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
