package exposure

import (
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/webhooks/internal/webhooktest"
)

// FuzzParseReport: any authenticated body either parses into a report
// with a well-formed fingerprint and no trace of the token, or is refused
// with an error that does not quote it. Never a panic.
func FuzzParseReport(f *testing.F) {
	for _, s := range []string{
		`{"token":"` + token + `","source":"splunk","url":"https://logs/x","key":"kubeadapt-prod","type":"kubeadapt_api_key"}`,
		`{"sha256":"` + rotator.Fingerprint(token) + `"}`,
		`{"token":"` + token + `","url":"https://logs/?q=` + token + `"}`,
		`{"token":"` + token + `","sha256":"00"}`,
		`{"token":1}`, `[]`, `null`, `{}`, `{"token":"a"} {}`, `{"token":"\u0000"}`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rep, err := parseReport(body)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if b, err := hex.DecodeString(rep.Fingerprint); err != nil || len(b) != 32 || strings.ToLower(rep.Fingerprint) != rep.Fingerprint {
			t.Fatalf("fingerprint %q", rep.Fingerprint)
		}
		if rep.Via != Via || rep.ID != "" {
			t.Fatalf("report %+v", rep)
		}
	})
}

// FuzzServeHTTP signs arbitrary bodies and runs them through the whole
// handler: it answers 202 or a 4xx, never panics, and never echoes the
// token of a body that carries one.
func FuzzServeHTTP(f *testing.F) {
	f.Add([]byte(`{"token":"`+token+`","source":"s"}`), "msg_1")
	f.Add([]byte(`{"sha256":"`+rotator.Fingerprint(token)+`"}`), "msg_2")
	f.Add([]byte(`{"token":"`+token+`"`), "msg_3")
	f.Add([]byte(`{"token":"`+token+`","x":1}`), "m")
	fx := newFixture(f)
	f.Fuzz(func(t *testing.T, body []byte, id string) {
		fx.now = fx.now.Add(time.Second) // a fresh attempt each time
		w := fx.serve(signed(t, secret, id, fx.now, string(body)))
		switch {
		case w.Code == http.StatusAccepted, w.Code == http.StatusConflict:
		case w.Code >= 400 && w.Code < 500:
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		webhooktest.AssertNoLeak(t, token, map[string]string{"response": w.Body.String()})
	})
}
