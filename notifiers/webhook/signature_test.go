package webhook

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestVerify(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	body := []byte(`{"version":1}`)
	sign := func(secret, id, ts string, body []byte) string {
		s, err := Sign(secret, id, ts, body)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := sign(testSecret, "msg_1", ts, body)
	const whsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	tests := map[string]struct {
		secret, id, ts, sig string
		body                []byte
		at                  time.Time
		tolerance           time.Duration
		want                error
	}{
		"valid":                    {secret: testSecret, id: "msg_1", ts: ts, sig: good},
		"valid among several":      {secret: testSecret, id: "msg_1", ts: ts, sig: "v1,AAAA " + good},
		"standard webhooks secret": {secret: whsec, id: "msg_1", ts: ts, sig: sign(whsec, "msg_1", ts, body)},
		"wrong secret":             {secret: "other", id: "msg_1", ts: ts, sig: good, want: ErrSignature},
		"tampered body":            {secret: testSecret, id: "msg_1", ts: ts, sig: good, body: []byte(`{"version":2}`), want: ErrSignature},
		"other id":                 {secret: testSecret, id: "msg_2", ts: ts, sig: good, want: ErrSignature},
		"unknown version":          {secret: testSecret, id: "msg_1", ts: ts, sig: "v2," + good[3:], want: ErrSignature},
		"not base64":               {secret: testSecret, id: "msg_1", ts: ts, sig: "v1,@@@", want: ErrSignature},
		"missing signature":        {secret: testSecret, id: "msg_1", ts: ts, want: ErrSignature},
		"missing id":               {secret: testSecret, ts: ts, sig: good, want: ErrSignature},
		"malformed timestamp":      {secret: testSecret, id: "msg_1", ts: "yesterday", sig: good, want: ErrTimestamp},
		"at the tolerance":         {secret: testSecret, id: "msg_1", ts: ts, sig: good, at: now.Add(time.Minute), tolerance: time.Minute},
		"too old":                  {secret: testSecret, id: "msg_1", ts: ts, sig: good, at: now.Add(time.Minute + time.Second), tolerance: time.Minute, want: ErrTimestamp},
		"too far in the future":    {secret: testSecret, id: "msg_1", ts: ts, sig: good, at: now.Add(-6 * time.Minute), want: ErrTimestamp},
		"default tolerance":        {secret: testSecret, id: "msg_1", ts: ts, sig: good, at: now.Add(4 * time.Minute)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b := tc.body
			if b == nil {
				b = body
			}
			at := tc.at
			if at.IsZero() {
				at = now
			}
			err := Verify(tc.secret, tc.id, tc.ts, b, tc.sig, at, tc.tolerance)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if err != nil && (strings.Contains(err.Error(), testSecret) || strings.Contains(err.Error(), whsec)) {
				t.Fatal("error contains the secret")
			}
		})
	}
}

// TestSignKnownVector pins the algorithm to the Standard Webhooks test
// vector, so that off-the-shelf receivers accept rekey's signatures.
func TestSignKnownVector(t *testing.T) {
	const (
		secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		id     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
		ts     = "1614265330"
		body   = `{"test": 2432232314}`
		want   = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	)
	got, err := Sign(secret, id, ts, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}
