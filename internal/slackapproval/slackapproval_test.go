package slackapproval

import (
	"testing"

	"github.com/rekeyhq/rekey/rotator"
)

func TestButtonValue(t *testing.T) {
	for _, g := range []rotator.Gate{rotator.GateStart, rotator.GateRevoke, rotator.GateDrain} {
		v := ButtonValue("rot_0123abcd", g)
		if v != "rot_0123abcd:"+string(g) {
			t.Fatalf("ButtonValue = %q", v)
		}
		id, gate, ok := ParseButtonValue(v)
		if !ok || id != "rot_0123abcd" || gate != g {
			t.Fatalf("ParseButtonValue(%q) = %q %q %v", v, id, gate, ok)
		}
	}
	for _, bad := range []string{"", "rot_x", "rot_x:", ":start", "rot_x:delete"} {
		if _, _, ok := ParseButtonValue(bad); ok {
			t.Errorf("ParseButtonValue(%q) accepted", bad)
		}
	}
}
