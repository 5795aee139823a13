package http_test

import (
	"context"
	"encoding/json"
	nethttp "net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	rkhttp "github.com/rekeyhq/rekey/issuers/http"
	"github.com/rekeyhq/rekey/rotator"
)

// answerServer answers every request with the body it is given and
// records the request URIs.
type answerServer struct {
	mu     sync.Mutex
	status int
	body   []byte
	uris   []string
}

func (s *answerServer) ServeHTTP(w nethttp.ResponseWriter, r *nethttp.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.uris = append(s.uris, r.RequestURI)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(s.status)
	_, _ = w.Write(s.body)
}

func (s *answerServer) answer(status int, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body, s.uris = status, body, nil
}

func fuzzIssuer(f *testing.F) (*rkhttp.Issuer, *answerServer) {
	srv := &answerServer{status: 201}
	ts := httptest.NewServer(srv)
	f.Cleanup(ts.Close)
	tok := filepath.Join(f.TempDir(), "token")
	if err := os.WriteFile(tok, []byte(adminToken), 0o600); err != nil {
		f.Fatal(err)
	}
	cfg := rkhttp.DefaultConfig()
	cfg.BaseURL = ts.URL
	cfg.Auth = rkhttp.Auth{TokenFile: tok}
	cfg.Mint = rkhttp.Mint{Request: rkhttp.Request{Path: "/keys"}, IDPath: "data.id", SecretPath: "data.key"}
	cfg.Revoke.Path = "/keys/{{.ID}}"
	cfg.List = rkhttp.List{Request: rkhttp.Request{Path: "/keys?name={{urlquery .Name}}"}, ItemsPath: "data", IDPath: "id", NamePath: "name", StatusPath: "status"}
	is, err := rkhttp.New(cfg, nil)
	if err != nil {
		f.Fatal(err)
	}
	return is, srv
}

// FuzzMintAnswer: whatever the issuer answers to a mint, rekey does not
// panic, never quotes the secret it may hold in an error, and a minted id
// — whatever it contains — reaches the revoke request as one path segment.
func FuzzMintAnswer(f *testing.F) {
	for _, s := range []string{
		`{"data":{"id":"key_1","key":"ka_live_0123456789abcdefghij"}}`,
		`{"data":{"id":"../../admin/users/1","key":"ka_live_0123456789abcdefghij"}}`,
		`{"data":{"id":7,"key":"ka_live_0123456789abcdefghij"}}`,
		`{"data":{"id":"x?y#z%","key":""}}`, `{"data":{"key":"ka_live_0123456789abcdefghij"}}`, `{"data":[1]}`, `[`, `null`,
		`{"data":{"id":"..","key":"ka_live_0123456789abcdefghij"}}`,
	} {
		f.Add(201, []byte(s))
	}
	f.Add(500, []byte(`{"error":"ka_live_0123456789abcdefghij"}`))
	is, srv := fuzzIssuer(f)
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 200 || status > 599 || len(body) > 64<<10 {
			return
		}
		srv.answer(status, body)
		secret := secretIn(body)
		m, err := is.Mint(context.Background(), rotator.MintRequest{Key: "k", Name: "k-v1", Generation: 1})
		if err != nil {
			if secret != "" && strings.Contains(err.Error(), secret) {
				t.Fatalf("mint error quotes the secret: %v", err)
			}
			return
		}
		if m.ID == "" || m.Secret.Reveal() == "" {
			t.Fatalf("minted %q with an empty id or secret", m.ID)
		}
		srv.answer(204, nil)
		err = is.Revoke(context.Background(), rotator.CredentialRef{Key: "k", Name: "k-v1", Generation: 1, ID: m.ID})
		srv.mu.Lock()
		uris := srv.uris
		srv.mu.Unlock()
		if err != nil {
			if len(uris) != 0 {
				t.Fatalf("revoke of %q failed (%v) after sending %v", m.ID, err, uris)
			}
			return
		}
		if len(uris) != 1 {
			t.Fatalf("revoke sent %v", uris)
		}
		u, perr := url.Parse(uris[0])
		segs := strings.Split(u.EscapedPath(), "/")
		got, uerr := url.PathUnescape(segs[len(segs)-1])
		if perr != nil || len(segs) != 3 || segs[1] != "keys" || u.RawQuery != "" || uerr != nil || got != m.ID {
			t.Fatalf("id %q was revoked at %q", m.ID, uris[0])
		}
	})
}

// secretIn is the string at data.key in body, if any (8 bytes or more:
// shorter strings are too common to test for).
func secretIn(body []byte) string {
	var doc struct {
		Data struct {
			Key any `json:"key"`
		} `json:"data"`
	}
	if json.Unmarshal(body, &doc) != nil {
		return ""
	}
	if s, ok := doc.Data.Key.(string); ok && len(s) >= 8 {
		return s
	}
	return ""
}

// FuzzListAnswer: whatever the issuer answers to a list, FindByName does
// not panic and returns only non-empty ids.
func FuzzListAnswer(f *testing.F) {
	for _, s := range []string{
		`{"data":[{"id":"a","name":"k-v1","status":"active"},{"id":"b","name":"k-v1","status":"revoked"}]}`,
		`{"data":[{"id":1.5,"name":"k-v1"},{"name":"k-v1"},null,"x"]}`, `{"data":{}}`, `{}`, `[`,
	} {
		f.Add([]byte(s))
	}
	is, srv := fuzzIssuer(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > 64<<10 {
			return
		}
		srv.answer(200, body)
		ids, err := is.FindByName(context.Background(), "k", "k-v1")
		if err != nil {
			return
		}
		for _, id := range ids {
			if id == "" {
				t.Fatalf("FindByName returned an empty id from %s", body)
			}
		}
	})
}
