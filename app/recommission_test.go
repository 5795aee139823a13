package app

import (
	"testing"

	"github.com/rekeyhq/rekey/auth"
)

// Re-minting a decommissioned key undoes a decommission: an operator, who
// may rotate, may not; a responder may.
func TestRecommissionNeedsTheDecommissionRole(t *testing.T) {
	e := newAuthEnv(t, "")
	op := e.token("olga@example.com", auth.RoleOperator, "")
	if got := e.api(op, "POST", "/v1/keys/api/rotate", map[string]any{"bootstrap": true, "recommission": true}); got.status != 403 {
		t.Fatalf("an operator recommissions: %d %v", got.status, got.body)
	}
	resp := e.token("rita@example.com", auth.RoleResponder, "")
	if got := e.api(resp, "POST", "/v1/keys/api/rotate", map[string]any{"bootstrap": true, "recommission": true}); got.status == 403 {
		t.Fatalf("a responder may not recommission: %d %v", got.status, got.body)
	}
}
