package github

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/rekeyhq/rekey/rotator"
)

// FuzzParseKeyList: any key-list document parses or is refused, never a
// panic, and only P-256 keys come out.
func FuzzParseKeyList(f *testing.F) {
	s := newSigner(f, keyID)
	good, _ := json.Marshal(map[string]any{"public_keys": []map[string]any{
		{"key_identifier": keyID, "key": s.pem(f), "is_current": true},
		{"key_identifier": docKeyID, "key": docKey, "is_current": false},
	}})
	f.Add(good)
	f.Add([]byte(`{"public_keys":[{"key_identifier":"x","key":"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}]}`))
	f.Add([]byte(`{"public_keys":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, _, err := parseKeyList(b)
		if err != nil {
			return
		}
		for id, k := range keys {
			if !validKeyID(id) || k == nil || k.Curve.Params().Name != "P-256" {
				t.Fatalf("key %q: %v", id, k)
			}
		}
	})
}

// FuzzVerifySignature: arbitrary signature headers and bodies never panic
// and never verify, except GitHub's own documented example.
func FuzzVerifySignature(f *testing.F) {
	pub, err := parsePublicKey(docKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(docPayload), docSig)
	f.Add([]byte(docPayload), "MEUCIQ==")
	f.Add([]byte(""), "")
	f.Add([]byte("[]"), strings.Repeat("A", 600))
	f.Fuzz(func(t *testing.T, body []byte, sig string) {
		if verifySignature(pub, body, sig) && string(body) != docPayload {
			t.Fatalf("forged signature verified: body %q sig %q", body, sig)
		}
	})
}

// FuzzParsePartner: any authenticated body parses or is refused, never a
// panic; parsed matches all carry a token, and an error never quotes one.
func FuzzParsePartner(f *testing.F) {
	f.Add([]byte(docPayload))
	f.Add([]byte(`[{"token":"` + token + `","type":"t","url":"https://x/` + token + `","source":"content","extra":1}]`))
	f.Add([]byte(`[{"type":"t"}]`))
	f.Add([]byte(`[1,"a",null]`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, err := parsePartner(b)
		if err != nil {
			if strings.Contains(err.Error(), token) {
				t.Fatalf("error quotes the token: %v", err)
			}
			return
		}
		for _, m := range ms {
			if m.Token == "" {
				t.Fatalf("match without a token: %+v", m)
			}
			if len(m.Token) > len("<redacted>") && (strings.Contains(m.URL, m.Token) || strings.Contains(m.Type, m.Token) || strings.Contains(m.Source, m.Token)) {
				t.Fatalf("token left in the match's other fields: %+v", m)
			}
		}
	})
}

// FuzzParseAlertEvent: any authenticated payload (JSON or form) parses or
// is refused, never a panic; a parsed one names a safe owner/repo path.
func FuzzParseAlertEvent(f *testing.F) {
	payload := alertPayload("created", "acme", "billing", 7)
	f.Add([]byte(payload), false)
	f.Add([]byte(url.Values{"payload": {payload}}.Encode()), true)
	f.Add([]byte(alertPayload("created", "acme", "../x", 7)), false)
	f.Add([]byte(`{"action":"created","alert":{"number":1},"repository":{"full_name":"a/b"}}`), false)
	f.Add([]byte(`payload=%zz`), true)
	f.Fuzz(func(t *testing.T, b []byte, form bool) {
		mt := mediaJSON
		if form {
			mt = mediaForm
		}
		ev, err := parseAlertEvent(b, mt)
		if err != nil {
			return
		}
		owner, repo, err := ev.repo()
		if err != nil || strings.ContainsAny(owner+repo, "/?#%\\") || repo == ".." || ev.Alert.Number <= 0 {
			t.Fatalf("accepted %+v (%q/%q, %v)", ev, owner, repo, err)
		}
	})
}

// FuzzParseAlertAnswer: any API answer parses or is refused, never a
// panic; the secret never leaks into the details or an error.
func FuzzParseAlertAnswer(f *testing.F) {
	good, _ := json.Marshal(map[string]any{"number": 7, "secret": alertSecret, "secret_type": "t", "html_url": "https://x", "state": "open"})
	f.Add(good)
	f.Add([]byte(`{"number":7,"secret":"` + alertSecret + `","html_url":"https://x/` + alertSecret + `"}`))
	f.Add([]byte(`{"number":7}`))
	f.Add([]byte(`{"secret":7}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, s, err := parseAlertAnswer(b)
		if err != nil {
			if strings.Contains(err.Error(), alertSecret) {
				t.Fatalf("error quotes the secret: %v", err)
			}
			return
		}
		if s.IsZero() {
			t.Fatal("no secret and no error")
		}
		if raw := s.Reveal(); len(raw) > len("<redacted>") && strings.Contains(d.HTMLURL+d.SecretType+d.State, raw) {
			t.Fatalf("secret left in the details: %+v", d)
		}
		if rotator.Fingerprint(s.Reveal()) != s.Fingerprint() {
			t.Fatal("fingerprint mismatch")
		}
	})
}

// FuzzVerifyHubSignature: nothing but the genuine HMAC verifies.
func FuzzVerifyHubSignature(f *testing.F) {
	body := alertPayload("created", "acme", "billing", 7)
	f.Add([]byte(body), hubSign(hubSecret, body))
	f.Add([]byte(body), "sha256=")
	f.Add([]byte(""), "sha1=abc")
	f.Fuzz(func(t *testing.T, b []byte, header string) {
		if verifyHubSignature([]byte(hubSecret), b, header) && !strings.EqualFold(header, hubSign(hubSecret, string(b))) {
			t.Fatalf("forged signature verified: %q", header)
		}
	})
}
