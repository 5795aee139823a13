package github

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// GitHub's documented example: a payload signed by its published test key.
const (
	docPayload = `[{"token":"some_token","type":"some_type","url":"some_url","source":"some_source"}]`
	docKeyID   = "f9525bf080f75b3506ca1ead061add62b8633a346606dc5fe544e29231c6ee0d"
	docSig     = "MEUCIFLZzeK++IhS+y276SRk2Pe5LfDrfvTXu6iwKKcFGCrvAiEAhHN2kDOhy2I6eGkOFmxNkOJ+L2y8oQ9A2T9GGJo6WJY="
	docKey     = `-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEsz9ugWDj5jK5ELBK42ynytbo38gP
HzZFI03Exwz8Lh/tCfL3YxwMdLjB+bMznsanlhK0RwcGP3IDb34kQDIo3Q==
-----END PUBLIC KEY-----
`
)

func TestGitHubDocumentedExample(t *testing.T) {
	pub, err := parsePublicKey(docKey)
	if err != nil {
		t.Fatal(err)
	}
	if !verifySignature(pub, []byte(docPayload), docSig) {
		t.Fatal("GitHub's documented example does not verify")
	}
	if verifySignature(pub, []byte(docPayload+"\n"), docSig) {
		t.Fatal("a changed body verifies")
	}
	if _, err := parsePartner([]byte(docPayload)); err != nil {
		t.Fatal(err)
	}
}

func TestPartner(t *testing.T) {
	two := `[{"token":"` + token + `","type":"kubeadapt_api_key","url":"https://github.com/o/r/blob/abc/.env","source":"content"},` +
		`{"token":"` + unknownToken + `","type":"kubeadapt_api_key","url":"","source":"commit"}]`
	fp, unknownFP := rotator.Fingerprint(token), rotator.Fingerprint(unknownToken)
	tests := map[string]struct {
		req        func(t *testing.T, f *fixture) *http.Request
		wantStatus int
		wantBody   []feedback
		intake     int
	}{
		"known and unknown tokens": {
			req:        func(t *testing.T, f *fixture) *http.Request { return partnerRequest(t, f.gh, two) },
			wantStatus: http.StatusOK,
			wantBody: []feedback{
				{TokenHash: fp, TokenType: "kubeadapt_api_key", Label: labelTrue},
				{TokenHash: unknownFP, TokenType: "kubeadapt_api_key", Label: labelFalse},
			},
			intake: 2,
		},
		"empty array": {
			req:        func(t *testing.T, f *fixture) *http.Request { return partnerRequest(t, f.gh, `[]`) },
			wantStatus: http.StatusOK,
			wantBody:   []feedback{},
		},
		"signed by another key": {
			req: func(t *testing.T, f *fixture) *http.Request {
				return partnerRequest(t, signer{id: keyID, priv: newSigner(t, "x").priv}, two)
			},
			wantStatus: http.StatusUnauthorized,
		},
		"tampered body": {
			req: func(t *testing.T, f *fixture) *http.Request {
				r := partnerRequest(t, f.gh, two)
				other := strings.Replace(two, "content", "commit", 1)
				r2 := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(other))
				r2.Header = r.Header
				return r2
			},
			wantStatus: http.StatusUnauthorized,
		},
		"unknown key identifier": {
			req:        func(t *testing.T, f *fixture) *http.Request { return partnerRequest(t, newSigner(t, "ffff"), two) },
			wantStatus: http.StatusUnauthorized,
		},
		"missing signature": {
			req: func(t *testing.T, f *fixture) *http.Request {
				r := partnerRequest(t, f.gh, two)
				r.Header.Del(headerKeySignature)
				return r
			},
			wantStatus: http.StatusUnauthorized,
		},
		"missing key identifier": {
			req: func(t *testing.T, f *fixture) *http.Request {
				r := partnerRequest(t, f.gh, two)
				r.Header.Del(headerKeyID)
				return r
			},
			wantStatus: http.StatusUnauthorized,
		},
		"signature not base64": {
			req: func(t *testing.T, f *fixture) *http.Request {
				r := partnerRequest(t, f.gh, two)
				r.Header.Set(headerKeySignature, "not*base64")
				return r
			},
			wantStatus: http.StatusUnauthorized,
		},
		"oversize body": {
			req: func(t *testing.T, f *fixture) *http.Request {
				return partnerRequest(t, f.gh, `[{"token":"`+token+`","url":"`+strings.Repeat("a", 1<<20)+`"}]`)
			},
			wantStatus: http.StatusRequestEntityTooLarge,
		},
		"malformed JSON": {
			req:        func(t *testing.T, f *fixture) *http.Request { return partnerRequest(t, f.gh, `[{"token":"`+token+`"`) },
			wantStatus: http.StatusBadRequest,
		},
		"object instead of array": {
			req:        func(t *testing.T, f *fixture) *http.Request { return partnerRequest(t, f.gh, `{"token":"`+token+`"}`) },
			wantStatus: http.StatusBadRequest,
		},
		"match without token": {
			req:        func(t *testing.T, f *fixture) *http.Request { return partnerRequest(t, f.gh, `[{"type":"x"}]`) },
			wantStatus: http.StatusBadRequest,
		},
		"wrong content type": {
			req: func(t *testing.T, f *fixture) *http.Request {
				r := partnerRequest(t, f.gh, two)
				r.Header.Set("Content-Type", "text/plain")
				return r
			},
			wantStatus: http.StatusUnsupportedMediaType,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, nil)
			w := f.serve(tc.req(t, f))
			if w.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.wantStatus, w.Body)
			}
			got := f.intake.Exposures()
			if len(got) != tc.intake {
				t.Fatalf("intake called %d times, want %d", len(got), tc.intake)
			}
			if f.guard.Calls() != 0 {
				t.Fatalf("partner format used the replay guard")
			}
			if tc.wantBody != nil {
				var fb []feedback
				if err := json.Unmarshal(w.Body.Bytes(), &fb); err != nil || !reflect.DeepEqual(fb, tc.wantBody) {
					t.Fatalf("body %s, want %+v", w.Body, tc.wantBody)
				}
			}
			if tc.wantStatus == http.StatusOK && tc.intake == 2 {
				want := rotator.ExposureReport{ID: got[0].ID, Via: ViaPartner, Source: Source, URL: "https://github.com/o/r/blob/abc/.env",
					Fingerprint: fp, Type: "kubeadapt_api_key", ReceivedAt: t0}
				if got[0] != want || !strings.HasPrefix(got[0].ID, "github-partner:") || got[0].ID == got[1].ID {
					t.Fatalf("reports %+v", got)
				}
			}
			f.noLeak(t, w.Body.String())
		})
	}
}

func TestPartnerRetryDeduplicates(t *testing.T) {
	f := newFixture(t, nil)
	body := `[{"token":"` + token + `","type":"t","url":"u","source":"content"}]`
	if w := f.serve(partnerRequest(t, f.gh, body)); w.Code != http.StatusOK {
		t.Fatalf("first: %d %s", w.Code, w.Body)
	}
	// GitHub retries: same body, a fresh ECDSA signature.
	if w := f.serve(partnerRequest(t, f.gh, body)); w.Code != http.StatusOK {
		t.Fatalf("retry: %d %s", w.Code, w.Body)
	}
	got := f.intake.Exposures()
	if len(got) != 2 || got[0].ID != got[1].ID {
		t.Fatalf("retry did not carry the same report ID: %+v", got)
	}
}

func TestPartnerFailures(t *testing.T) {
	body := `[{"token":"` + token + `","type":"t","url":"u","source":"content"}]`
	t.Run("intake error answers 503", func(t *testing.T) {
		f := newFixture(t, nil)
		f.intake.ExposureFunc = func(context.Context, rotator.ExposureReport) (rotator.ExposureResult, error) {
			return rotator.ExposureResult{}, errors.New("database is locked")
		}
		w := f.serve(partnerRequest(t, f.gh, body))
		if w.Code != http.StatusServiceUnavailable {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		f.noLeak(t, w.Body.String())
	})
	t.Run("key list unavailable answers 503 without calling the engine", func(t *testing.T) {
		f := newFixture(t, nil)
		f.keys.setStatus(http.StatusBadGateway)
		w := f.serve(partnerRequest(t, f.gh, body))
		if w.Code != http.StatusServiceUnavailable || len(f.intake.Exposures()) != 0 {
			t.Fatalf("status %d, %d intake calls", w.Code, len(f.intake.Exposures()))
		}
		// GitHub recovers; past the refresh interval the retry goes through.
		f.keys.setStatus(http.StatusOK)
		f.now = f.now.Add(DefaultKeysRefreshInterval)
		if w := f.serve(partnerRequest(t, f.gh, body)); w.Code != http.StatusOK {
			t.Fatalf("retry: %d %s", w.Code, w.Body)
		}
	})
	t.Run("partner disabled", func(t *testing.T) {
		f := newFixture(t, func(c *Config) { c.Partner = false })
		if w := f.serve(partnerRequest(t, f.gh, body)); w.Code != http.StatusNotFound {
			t.Fatalf("status %d", w.Code)
		}
	})
	t.Run("unsigned request", func(t *testing.T) {
		f := newFixture(t, nil)
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		if w := f.serve(r); w.Code != http.StatusUnauthorized || len(f.intake.Exposures()) != 0 {
			t.Fatalf("status %d", w.Code)
		}
	})
}

func TestKeyRing(t *testing.T) {
	body := []byte(`[]`)
	t.Run("unknown identifiers refresh at most once per interval", func(t *testing.T) {
		f := newFixture(t, nil)
		for i := range 20 {
			w := f.serve(partnerRequest(t, newSigner(t, "attacker-"+itoa(i)), string(body)))
			if w.Code != http.StatusUnauthorized {
				t.Fatalf("status %d", w.Code)
			}
		}
		if n := f.keys.count(); n != 1 {
			t.Fatalf("%d key-list fetches, want 1", n)
		}
		f.now = f.now.Add(DefaultKeysRefreshInterval)
		f.serve(partnerRequest(t, newSigner(t, "attacker-x"), string(body)))
		f.serve(partnerRequest(t, newSigner(t, "attacker-y"), string(body)))
		if n := f.keys.count(); n != 2 {
			t.Fatalf("%d key-list fetches after the interval, want 2", n)
		}
		// A known key needs no fetch.
		if w := f.serve(partnerRequest(t, f.gh, string(body))); w.Code != http.StatusOK || f.keys.count() != 2 {
			t.Fatalf("status %d, %d fetches", w.Code, f.keys.count())
		}
	})
	t.Run("concurrent requests share one fetch", func(t *testing.T) {
		f := newFixture(t, nil)
		var wg sync.WaitGroup
		codes := make([]int, 16)
		for i := range codes {
			r := partnerRequest(t, f.gh, string(body))
			wg.Go(func() { codes[i] = f.serve(r).Code })
		}
		wg.Wait()
		for _, c := range codes {
			if c != http.StatusOK {
				t.Fatalf("codes %v", codes)
			}
		}
		if n := f.keys.count(); n != 1 {
			t.Fatalf("%d key-list fetches, want 1", n)
		}
	})
	t.Run("GitHub rotates its key", func(t *testing.T) {
		f := newFixture(t, nil)
		if w := f.serve(partnerRequest(t, f.gh, string(body))); w.Code != http.StatusOK {
			t.Fatalf("status %d", w.Code)
		}
		next := newSigner(t, "next-key")
		f.keys.publish(t, next, f.gh)
		f.now = f.now.Add(time.Hour)
		if w := f.serve(partnerRequest(t, next, string(body))); w.Code != http.StatusOK {
			t.Fatalf("new key: status %d %s", w.Code, w.Body)
		}
		// Withdrawn keys stop verifying once the list is refetched.
		f.keys.publish(t, next)
		f.now = f.now.Add(DefaultKeysMaxAge)
		if w := f.serve(partnerRequest(t, f.gh, string(body))); w.Code != http.StatusUnauthorized {
			t.Fatalf("withdrawn key: status %d", w.Code)
		}
	})
	t.Run("a stale list is kept while GitHub is unreachable", func(t *testing.T) {
		f := newFixture(t, nil)
		f.serve(partnerRequest(t, f.gh, string(body)))
		f.keys.setStatus(http.StatusInternalServerError)
		f.now = f.now.Add(DefaultKeysMaxAge + time.Minute)
		if w := f.serve(partnerRequest(t, f.gh, string(body))); w.Code != http.StatusOK || f.keys.count() != 2 {
			t.Fatalf("status %d, %d fetches", w.Code, f.keys.count())
		}
	})
	t.Run("the token authenticates fetches", func(t *testing.T) {
		f := newFixture(t, nil)
		f.serve(partnerRequest(t, f.gh, string(body)))
		if f.keys.auth[0] != "Bearer "+ghToken {
			t.Fatalf("Authorization %q", f.keys.auth[0])
		}
		g := newFixture(t, func(c *Config) { c.Alert, c.TokenEnv, c.SecretEnv = false, "", "" })
		g.serve(partnerRequest(t, g.gh, string(body)))
		if g.keys.auth[0] != "" {
			t.Fatalf("Authorization %q without a token", g.keys.auth[0])
		}
	})
}

func TestParseKeyList(t *testing.T) {
	good := newSigner(t, "good")
	pemOf := func(pub any) string {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	}
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	edPEM := pemOf(edPub)
	p384PEM := pemOf(&p384.PublicKey)
	doc := func(entries ...[2]string) []byte {
		var d keyList
		for _, e := range entries {
			d.PublicKeys = append(d.PublicKeys, struct {
				KeyIdentifier string `json:"key_identifier"`
				Key           string `json:"key"`
				IsCurrent     bool   `json:"is_current"`
			}{KeyIdentifier: e[0], Key: e[1]})
		}
		b, _ := json.Marshal(d)
		return b
	}
	keys, skipped, err := parseKeyList(doc([2]string{"good", good.pem(t)}, [2]string{"ed25519", edPEM}, [2]string{"p384", p384PEM}, [2]string{"", good.pem(t)}, [2]string{"junk", "junk"}))
	if err != nil || len(keys) != 1 || keys["good"] == nil || len(skipped) != 4 {
		t.Fatalf("keys %v skipped %v err %v", keys, skipped, err)
	}
	for name, b := range map[string][]byte{"no keys": doc(), "only ed25519": doc([2]string{"ed25519", edPEM}), "not JSON": []byte("<html>")} {
		if _, _, err := parseKeyList(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
