package exposure

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// Every text field of a report reaches rekey show and notifications: one
// with terminal control characters is refused with 400 naming it, and
// nothing is recorded. On the code before, it was accepted (202) and shown
// raw.
func TestControlCharactersAreRefused(t *testing.T) {
	for field, v := range map[string]string{
		"source": "gh\u001b[2K\r\u001b[32mall good",
		"url":    "\u001b]8;;https://evil.example\u001b\\https://github.com/o/r\u001b]8;;\u001b\\",
		"type":   "kubeadapt\r\napi key",
		"key":    "api\u009b1A",
	} {
		t.Run(field, func(t *testing.T) {
			f := newFixture(t)
			w := f.serve(signed(t, secret, "msg_1", t0, body(map[string]any{"token": token, field: v})))
			var e struct{ Error string }
			if w.Code != http.StatusBadRequest || json.Unmarshal(w.Body.Bytes(), &e) != nil || !strings.Contains(e.Error, field+": must be printable text") {
				t.Fatalf("status %d body %s, want 400 naming %s", w.Code, w.Body, field)
			}
			if n := len(f.intake.Exposures()); n != 0 || f.guard.Calls() != 0 {
				t.Fatalf("refused report had side effects: %d intake calls, %d guard calls", n, f.guard.Calls())
			}
		})
	}
}
