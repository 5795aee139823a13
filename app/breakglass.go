package app

import (
	"context"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"time"

	"github.com/rekeyhq/rekey/auth"
	"github.com/rekeyhq/rekey/config"
	"github.com/rekeyhq/rekey/rotator"
)

// ViaBreakGlass is the channel recorded for actions taken by opening the
// store directly (`rekey --break-glass`), instead of through the daemon's
// admin API with a credential.
const ViaBreakGlass = "break-glass"

// BreakGlassPrincipal is whoever runs the CLI with direct store access:
// "break-glass:<os user>@<host>", with the admin role. The name is the
// operating system's account for the process's uid, looked up in the
// account database (user.LookupId, which never reads the environment —
// user.Current falls back to $USER without cgo when the uid has no
// passwd entry), or "uid:<n>" when it has none; so the trail names the
// account that held the database, never a name someone typed or set.
func BreakGlassPrincipal() *auth.Principal {
	uid := strconv.Itoa(os.Getuid())
	name := "uid:" + uid
	if u, err := user.LookupId(uid); err == nil && u.Username != "" {
		name = u.Username
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return &auth.Principal{ID: "break-glass:" + name + "@" + host, Via: ViaBreakGlass, Grants: []auth.Grant{{Role: auth.RoleAdmin}}}
}

// BreakGlassHandler serves the admin API in process, as p, over this
// daemon's store: the CLI's break-glass mode runs every verb through the
// same handlers (checks, views, errors) as the API. Every request that
// changes something is first recorded in the audit trail with via
// break-glass, whether or not it then succeeds.
func (d *Daemon) BreakGlassHandler(p *auth.Principal) http.Handler {
	mux := http.NewServeMux()
	for pattern, h := range d.adminRoutes() {
		mux.Handle(pattern, h)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if err := d.auditBreakGlass(r.Context(), p, r.Method+" "+r.URL.Path); err != nil {
				writeError(w, http.StatusInternalServerError, "break-glass: cannot record the action in the audit trail, nothing was done: "+err.Error())
				return
			}
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

func (d *Daemon) auditBreakGlass(ctx context.Context, p *auth.Principal, request string) error {
	return d.Store.Save(ctx, rotator.Commit{Audit: []rotator.AuditEvent{{At: time.Now(), Actor: p.ID, Action: "break-glass",
		Detail: map[string]string{"via": ViaBreakGlass, "request": request}}}})
}

// via names the channel a principal acts through, for approvals and
// notifications: the admin API, the admin API authenticated by a client
// certificate alone (mtls), or break-glass.
func via(p *auth.Principal) string {
	if p != nil && (p.Via == ViaBreakGlass || p.Via == auth.ViaMTLS) {
		return p.Via
	}
	return "api"
}

// StoreFile is the SQLite file cfg's store lives in and whether it exists
// ("" for a store that is not a file). Read-only commands check it before
// Build, which would create an empty store.
func StoreFile(cfg *config.Config) (string, bool) {
	if cfg.Store.Type != "" && cfg.Store.Type != "sqlite" {
		return "", true
	}
	path := cfg.Store.Path
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	_, err := os.Stat(path)
	return path, err == nil
}
