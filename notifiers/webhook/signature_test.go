package webhook

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestVerify checks that the notifier's exported Sign/Verify are the
// shared Standard Webhooks scheme (internal/stdwebhooks, whose own tests
// cover every rejection case): a round trip passes, and both error classes
// come out as this package's sentinels without the secret.
func TestVerify(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	body := []byte(`{"version":1}`)
	good, err := Sign(testSecret, "msg_1", ts, body)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(testSecret, "msg_1", ts, body, good, now, 0); err != nil {
		t.Fatalf("round trip: %v", err)
	}
	for name, tc := range map[string]struct {
		body []byte
		at   time.Time
		want error
	}{
		"tampered body": {body: []byte(`{"version":2}`), at: now, want: ErrSignature},
		"too old":       {body: body, at: now.Add(DefaultTolerance + time.Second), want: ErrTimestamp},
	} {
		t.Run(name, func(t *testing.T) {
			err := Verify(testSecret, "msg_1", ts, tc.body, good, tc.at, 0)
			if !errors.Is(err, tc.want) || strings.Contains(err.Error(), testSecret) {
				t.Fatalf("err = %v, want %v without the secret", err, tc.want)
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
