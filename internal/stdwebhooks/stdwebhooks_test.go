package stdwebhooks

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The Standard Webhooks reference test vector: every conforming library
// produces exactly this signature.
const (
	vectorSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTS     = "1614265330"
	vectorBody   = `{"test": 2432232314}`
	vectorSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

const testSecret = "0123456789abcdef-test-secret"

func TestReferenceVector(t *testing.T) {
	got, err := Sign(vectorSecret, vectorID, vectorTS, []byte(vectorBody))
	if err != nil {
		t.Fatal(err)
	}
	if got != vectorSig {
		t.Fatalf("Sign = %q, want %q", got, vectorSig)
	}
	at := time.Unix(1614265330, 0)
	if err := Verify(vectorSecret, vectorID, vectorTS, []byte(vectorBody), "v1,bm9wZQ== "+vectorSig, at, 0); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

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
	tests := map[string]struct {
		secret, id, ts, sig string
		body                []byte
		at                  time.Time
		tolerance           time.Duration
		want                error
	}{
		"valid":                    {secret: testSecret, id: "msg_1", ts: ts, sig: good},
		"valid among several":      {secret: testSecret, id: "msg_1", ts: ts, sig: "v1,AAAA " + good},
		"standard webhooks secret": {secret: vectorSecret, id: "msg_1", ts: ts, sig: sign(vectorSecret, "msg_1", ts, body)},
		"wrong secret":             {secret: "other-secret-of-16+", id: "msg_1", ts: ts, sig: good, want: ErrSignature},
		"bad whsec secret":         {secret: "whsec_!!", id: "msg_1", ts: ts, sig: good, want: ErrSignature},
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
			if err != nil && strings.Contains(err.Error(), tc.secret) {
				t.Fatalf("error leaks the secret: %v", err)
			}
		})
	}
}

func TestVerifyRequest(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	body := []byte(`{"token":"x"}`)
	key, _ := ParseKey(testSecret)
	old, _ := ParseKey("the-previous-secret-value")
	signed := func(k Key, id string, at time.Time) http.Header {
		h := http.Header{}
		k.SetHeaders(h, id, at, body)
		return h
	}
	tests := map[string]struct {
		h    http.Header
		keys []Key
		want error
	}{
		"valid":             {h: signed(key, "msg_1", now), keys: []Key{key}},
		"second key":        {h: signed(key, "msg_1", now), keys: []Key{old, key}},
		"no key":            {h: signed(key, "msg_1", now), want: ErrSignature},
		"wrong key":         {h: signed(old, "msg_1", now), keys: []Key{key}, want: ErrSignature},
		"stale":             {h: signed(key, "msg_1", now.Add(-10*time.Minute)), keys: []Key{key}, want: ErrTimestamp},
		"id with a space":   {h: signed(key, "msg 1", now), keys: []Key{key}, want: ErrSignature},
		"id too long":       {h: signed(key, strings.Repeat("a", 257), now), keys: []Key{key}, want: ErrSignature},
		"no headers at all": {h: http.Header{}, keys: []Key{key}, want: ErrSignature},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m, err := VerifyRequest(tc.h, body, now, time.Minute, tc.keys...)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if err == nil {
				if m.ID != "msg_1" || !m.Timestamp.Equal(now) || m.AttemptID() != "msg_1."+strconv.FormatInt(now.Unix(), 10) {
					t.Fatalf("message = %+v", m)
				}
			}
		})
	}
}

func TestKeyIsRedacted(t *testing.T) {
	k, err := ParseKey(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("key", "k", k)
	js, _ := json.Marshal(struct{ K Key }{k})
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s %q", k, k, k, k, k), string(js), logged.String()} {
		if strings.Contains(s, "0123456789abcdef") {
			t.Fatalf("key printed: %s", s)
		}
	}
	if k.Len() != len(testSecret) {
		t.Fatalf("Len = %d", k.Len())
	}
	if _, err := ParseKey(""); err == nil {
		t.Fatal("empty secret accepted")
	}
}

// FuzzVerifyRequest: arbitrary headers and bodies never panic, and nothing
// but the genuine signature verifies.
func FuzzVerifyRequest(f *testing.F) {
	key, _ := ParseKey(vectorSecret)
	f.Add(vectorID, vectorTS, vectorSig, []byte(vectorBody))
	f.Add(vectorID, vectorTS, "v1,bm9wZQ== "+vectorSig, []byte(vectorBody))
	f.Add("", "", "", []byte{})
	f.Add("msg", "-99999999999999999999", "v1,", []byte("{}"))
	f.Add("msg", "9223372036854775807", "v1,,,, v1 ,v1,====", []byte("{}"))
	at := time.Unix(1614265330, 0)
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		h := http.Header{}
		h.Set(HeaderID, id)
		h.Set(HeaderTimestamp, ts)
		h.Set(HeaderSignature, sig)
		m, err := VerifyRequest(h, body, at, DefaultTolerance, key)
		if err != nil {
			return
		}
		genuine := id == vectorID && ts == vectorTS && string(body) == vectorBody
		if !genuine && !strings.Contains(sig, key.Sign(id, ts, body)[3:]) {
			t.Fatalf("verified a message that was not signed: id=%q ts=%q sig=%q", id, ts, sig)
		}
		if m.ID != h.Get(HeaderID) {
			t.Fatalf("message id %q, header %q", m.ID, h.Get(HeaderID))
		}
	})
}
