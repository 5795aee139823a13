package app

import (
	"context"
	"slices"
	"testing"

	"github.com/rekeyhq/rekey/rotator"
)

// Once a departure is recorded the engine counts the person as owner of no
// key; GET /v1/keys and describe say so — the person is listed apart, as
// departed, not among the owners. On the code before, the configured owners
// were shown as they were.
func TestDepartedOwnerIsNotShownAsOwner(t *testing.T) {
	e := newAuthEnv(t, "")
	owners := func(v any) (cur, gone []string) {
		m, _ := v.(map[string]any)
		for f, out := range map[string]*[]string{"owners": &cur, "departed_owners": &gone} {
			l, _ := m[f].([]any)
			for _, o := range l {
				s, _ := o.(string)
				*out = append(*out, s)
			}
		}
		return cur, gone
	}
	keys, _ := e.api(testBootstrap, "GET", "/v1/keys", nil).body["keys"].([]any)
	if cur, gone := owners(keys[0]); !slices.Equal(cur, []string{"alice@example.com"}) || len(gone) != 0 {
		t.Fatalf("before the departure: owners %v, departed %v", cur, gone)
	}
	if _, err := e.d.Engine.ReportDeparture(context.Background(), rotator.DepartureReport{ID: "hr-1", Email: "alice@example.com", Via: "hr"}); err != nil {
		t.Fatal(err)
	}
	keys, _ = e.api(testBootstrap, "GET", "/v1/keys", nil).body["keys"].([]any)
	if cur, gone := owners(keys[0]); len(cur) != 0 || !slices.Equal(gone, []string{"alice@example.com"}) {
		t.Fatalf("GET /v1/keys after the departure: owners %v, departed %v", cur, gone)
	}
	desc := e.api(testBootstrap, "GET", "/v1/keys/api", nil)
	if cur, gone := owners(desc.body["key"]); desc.status != 200 || len(cur) != 0 || !slices.Equal(gone, []string{"alice@example.com"}) {
		t.Fatalf("describe after the departure: %d owners %v, departed %v", desc.status, cur, gone)
	}
}
