package app

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os/user"
	"strings"
	"testing"

	"github.com/rekeyhq/rekey/rotator"
)

// The break-glass handler acts as the OS account on this host, records
// every request that changes something before acting (a refused one
// too), records nothing for reads, and its approvals say via break-glass.
func TestBreakGlassHandlerRecordsEveryAction(t *testing.T) {
	e := newAuthEnv(t, "")
	p := BreakGlassPrincipal()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p.ID, "break-glass:"+u.Username+"@") || p.Via != ViaBreakGlass {
		t.Fatalf("principal %+v", p)
	}
	srv := httptest.NewServer(e.d.BreakGlassHandler(p))
	t.Cleanup(srv.Close)
	count := func() int {
		evs, err := e.d.Store.Audit(context.Background(), rotator.AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, ev := range evs {
			if ev.Action == "break-glass" && ev.Actor == p.ID && ev.Detail["via"] == ViaBreakGlass {
				n++
			}
		}
		return n
	}
	if a := e.call(srv, "", "GET", "/v1/keys", nil); a.status != http.StatusOK || count() != 0 {
		t.Fatalf("a read: %d, %d break-glass events", a.status, count())
	}
	if a := e.call(srv, "", "POST", "/v1/keys/nosuch/rotate", map[string]string{}); a.status != http.StatusNotFound || count() != 1 {
		t.Fatalf("a refused action: %d, %d break-glass events (want 1)", a.status, count())
	}
	// db needs no approval; api needs two approvers among a listed three,
	// which the break-glass account is not.
	a := e.call(srv, "", "POST", "/v1/keys/db/rotate", map[string]string{"reason": "incident"})
	if a.status != http.StatusCreated || a.body["actor"] != p.ID || count() != 2 {
		t.Fatalf("rotate: %d %v, %d break-glass events", a.status, a.body, count())
	}
	if a := e.call(srv, "", "POST", "/v1/keys/db/rotate", map[string]string{"actor": "someone-else"}); a.status != http.StatusForbidden {
		t.Fatalf("naming another actor in break-glass mode: %d", a.status)
	}
	if got := via(p); got != ViaBreakGlass {
		t.Fatalf("via %q", got)
	}
}
