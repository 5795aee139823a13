package http_test

import (
	"context"
	nethttp "net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	rkhttp "github.com/rekeyhq/rekey/issuers/http"
	"github.com/rekeyhq/rekey/rotator"
)

// idServer records the request URIs it receives and answers 204.
type idServer struct {
	mu   sync.Mutex
	uris []string
}

func (s *idServer) ServeHTTP(w nethttp.ResponseWriter, r *nethttp.Request) {
	s.mu.Lock()
	s.uris = append(s.uris, r.RequestURI)
	s.mu.Unlock()
	w.WriteHeader(nethttp.StatusNoContent)
}

func (s *idServer) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.uris
	s.uris = nil
	return out
}

// TestIssuerIDsStayOneSegment: an id the issuer returned reaches a request
// path escaped as one segment, even when the configuration writes {{.ID}}
// without pathescape; "." and ".." are refused before any request.
func TestIssuerIDsStayOneSegment(t *testing.T) {
	srv := &idServer{}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte(adminToken), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		path string
		id   string
		want string // the request URI; "" = refused without a request
	}{
		"traversal, unescaped template":  {path: "/keys/{{.ID}}", id: "../../admin/users/1", want: "/keys/..%2F..%2Fadmin%2Fusers%2F1"},
		"query, unescaped template":      {path: "/keys/{{.ID}}", id: "x?force=true", want: "/keys/x%3Fforce=true"},
		"fragment and percent":           {path: "/keys/{{.ID}}", id: "a#b%2F", want: "/keys/a%23b%252F"},
		"traversal, pathescape template": {path: "/keys/{{pathescape .ID}}", id: "../../admin/users/1", want: "/keys/..%2F..%2Fadmin%2Fusers%2F1"},
		"query value":                    {path: "/keys?id={{urlquery .ID}}", id: "a/b&c", want: "/keys?id=a%2Fb%26c"},
		"printf":                         {path: `/keys/{{printf "%s" .ID}}`, id: "../x", want: "/keys/..%2Fx"},
		"plain id":                       {path: "/keys/{{.ID}}", id: "key_123", want: "/keys/key_123"},
		"dot dot":                        {path: "/keys/{{.ID}}", id: ".."},
		"dot":                            {path: "/keys/{{.ID}}", id: "."},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := rkhttp.DefaultConfig()
			cfg.BaseURL = ts.URL
			cfg.Auth = rkhttp.Auth{TokenFile: tok}
			cfg.Mint = rkhttp.Mint{Request: rkhttp.Request{Path: "/keys"}, IDPath: "id", SecretPath: "key"}
			cfg.Revoke.Path = tc.path
			cfg.List = rkhttp.List{Request: rkhttp.Request{Path: "/keys"}, IDPath: "id", NamePath: "name"}
			is, err := rkhttp.New(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = is.Revoke(context.Background(), rotator.CredentialRef{Key: "k", Name: "k-v1", Generation: 1, ID: tc.id})
			got := srv.take()
			if tc.want == "" {
				if err == nil || !rotator.IsPermanent(err) || len(got) != 0 {
					t.Fatalf("Revoke(%q) = %v after requests %v; want a permanent refusal and no request", tc.id, err, got)
				}
				if !strings.Contains(err.Error(), "by hand") {
					t.Errorf("the refusal does not tell a person what to do: %v", err)
				}
				return
			}
			if err != nil || len(got) != 1 || got[0] != tc.want {
				t.Fatalf("Revoke(%q) = %v, requests %v; want one request to %s", tc.id, err, got, tc.want)
			}
		})
	}
}
