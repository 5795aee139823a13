package kubeadapt_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/testing/kubeadapt"
)

func TestAdminAuth(t *testing.T) {
	e := newEnv(t)
	k := e.mint("ci", []string{kubeadapt.ScopeClustersRead})

	routes := map[string]struct{ method, path string }{
		"list":   {http.MethodGet, "/admin/v1/api-keys"},
		"create": {http.MethodPost, "/admin/v1/api-keys"},
		"get":    {http.MethodGet, "/admin/v1/api-keys/" + k.ID},
		"delete": {http.MethodDelete, "/admin/v1/api-keys/" + k.ID},
		"revoke": {http.MethodPost, "/admin/v1/api-keys/" + k.ID + "/revoke"},
		"other":  {http.MethodGet, "/admin/v1/nothing"},
	}
	auths := map[string]string{
		"missing":          "",
		"wrong token":      "Bearer not-the-admin-token",
		"token prefix":     "Bearer " + adminToken[:len(adminToken)-1],
		"basic scheme":     "Basic " + adminToken,
		"no scheme":        adminToken,
		"data api key":     "Bearer " + k.Secret,
		"empty bearer":     "Bearer ",
		"trailing garbage": "Bearer " + adminToken + " x",
	}
	for rname, rt := range routes {
		for aname, auth := range auths {
			t.Run(rname+"/"+aname, func(t *testing.T) {
				r := e.do(rt.method, rt.path, auth, `{"name":"x","scopes":["clusters:read"]}`)
				if r.code != http.StatusUnauthorized {
					t.Fatalf("code = %d %s, want 401", r.code, r.body)
				}
				r.detail(t)
				if r.header.Get("WWW-Authenticate") == "" {
					t.Error("no WWW-Authenticate header")
				}
			})
		}
	}
	if got := e.s.Keys(); len(got) != 1 || got[0].Status != kubeadapt.StatusActive {
		t.Fatalf("unauthenticated requests changed keys: %+v", got)
	}
	// The scheme is case-insensitive (RFC 7235).
	if r := e.do(http.MethodGet, "/admin/v1/api-keys", "bearer "+adminToken, nil); r.code != http.StatusOK {
		t.Fatalf("lowercase bearer: %d", r.code)
	}
}

func TestRandomAdminToken(t *testing.T) {
	a, b := kubeadapt.New(kubeadapt.Options{}), kubeadapt.New(kubeadapt.Options{})
	if len(a.AdminToken()) < 32 || a.AdminToken() == b.AdminToken() {
		t.Fatalf("admin tokens %q and %q are not random", a.AdminToken(), b.AdminToken())
	}
}

func TestCreateKey(t *testing.T) {
	tests := map[string]struct {
		body         string
		code         int
		detail       string // substring of the detail of an error
		wantScopes   []string
		wantClusters []string
	}{
		"minimal": {
			body: `{"name":"ci","scopes":["clusters:read"]}`, code: 201,
			wantScopes: []string{"clusters:read"},
		},
		"clusters": {
			body: `{"name":"ci","scopes":["clusters:read","costs:read"],"allowed_cluster_ids":["prod-eu-1"]}`, code: 201,
			wantScopes: []string{"clusters:read", "costs:read"}, wantClusters: []string{"prod-eu-1"},
		},
		"empty cluster list means all": {
			body: `{"name":"ci","scopes":["costs:read"],"allowed_cluster_ids":[]}`, code: 201,
			wantScopes: []string{"costs:read"},
		},
		"duplicates collapse": {
			body: `{"name":" ci ","scopes":["costs:read","costs:read"],"allowed_cluster_ids":["a","a"]}`, code: 201,
			wantScopes: []string{"costs:read"}, wantClusters: []string{"a"},
		},
		"no body":           {body: ``, code: 400, detail: "required"},
		"not json":          {body: `name=ci`, code: 400, detail: "invalid JSON"},
		"unknown field":     {body: `{"name":"ci","scopes":["costs:read"],"allowedClusterIds":["a"]}`, code: 400, detail: "allowedClusterIds"},
		"trailing data":     {body: `{"name":"ci","scopes":["costs:read"]} {}`, code: 400, detail: "trailing"},
		"wrong type":        {body: `{"name":"ci","scopes":"costs:read"}`, code: 400, detail: "invalid JSON"},
		"no name":           {body: `{"scopes":["costs:read"]}`, code: 422, detail: "name"},
		"blank name":        {body: `{"name":"  ","scopes":["costs:read"]}`, code: 422, detail: "name"},
		"long name":         {body: `{"name":"` + strings.Repeat("n", 129) + `","scopes":["costs:read"]}`, code: 422, detail: "name"},
		"control char name": {body: `{"name":"a\nb","scopes":["costs:read"]}`, code: 422, detail: "name"},
		"no scopes":         {body: `{"name":"ci"}`, code: 422, detail: "scopes"},
		"empty scopes":      {body: `{"name":"ci","scopes":[]}`, code: 422, detail: "scopes"},
		"unknown scope":     {body: `{"name":"ci","scopes":["admin"]}`, code: 422, detail: `"admin"`},
		"blank cluster":     {body: `{"name":"ci","scopes":["costs:read"],"allowed_cluster_ids":[""]}`, code: 422, detail: "cluster"},
		"spaced cluster":    {body: `{"name":"ci","scopes":["costs:read"],"allowed_cluster_ids":["a b"]}`, code: 422, detail: "cluster"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			r := e.admin(http.MethodPost, "/admin/v1/api-keys", tt.body)
			if r.code != tt.code {
				t.Fatalf("code = %d %s, want %d", r.code, r.body, tt.code)
			}
			if tt.code != http.StatusCreated {
				if d := r.detail(t); !strings.Contains(d, tt.detail) {
					t.Errorf("detail = %q, want it to mention %q", d, tt.detail)
				}
				if n := len(e.s.Keys()); n != 0 {
					t.Errorf("%d keys stored after a rejected request", n)
				}
				return
			}
			c := decode[created](t, r.body)
			if !strings.HasPrefix(c.ID, "key_") || !kubeadapt.ValidKeyFormat(c.Secret) {
				t.Errorf("id %q or secret shape is wrong", c.ID)
			}
			if c.Name != "ci" || c.Status != kubeadapt.StatusActive || !c.CreatedAt.Equal(t0) ||
				c.LastUsedAt != nil || c.RevokedAt != nil {
				t.Errorf("created key = %+v", c.KeyInfo)
			}
			if !slices.Equal(c.Scopes, tt.wantScopes) || !slices.Equal(c.AllowedClusterIDs, tt.wantClusters) {
				t.Errorf("scopes %v clusters %v, want %v %v", c.Scopes, c.AllowedClusterIDs, tt.wantScopes, tt.wantClusters)
			}
			if got := r.header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
			if got := r.header.Get("Location"); got != "/admin/v1/api-keys/"+c.ID {
				t.Errorf("Location = %q", got)
			}
			if got, _ := e.s.Key(c.ID); !slices.Equal(got.Scopes, tt.wantScopes) {
				t.Errorf("stored key = %+v", got)
			}
		})
	}
}

func TestSecretsAreUniqueAndWellFormed(t *testing.T) {
	s := kubeadapt.New(kubeadapt.Options{})
	seen := map[string]bool{}
	ids := map[string]bool{}
	for range 500 {
		k, secret, err := s.CreateKey(kubeadapt.KeyRequest{Name: "same-name", Scopes: []string{kubeadapt.ScopeCostsRead}})
		if err != nil {
			t.Fatal(err)
		}
		if !kubeadapt.ValidKeyFormat(secret) || seen[secret] || ids[k.ID] {
			t.Fatalf("secret malformed or repeated after %d keys", len(seen))
		}
		seen[secret], ids[k.ID] = true, true
	}
}

func TestCreateKeyErrors(t *testing.T) {
	s := kubeadapt.New(kubeadapt.Options{})
	if _, _, err := s.CreateKey(kubeadapt.KeyRequest{Name: "x"}); !errors.Is(err, kubeadapt.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
}

func TestListAndGetKeys(t *testing.T) {
	e := newEnv(t)
	a := e.mint("billing", []string{kubeadapt.ScopeCostsRead})
	e.clock.Advance(time.Minute)
	b := e.mint("billing", []string{kubeadapt.ScopeCostsRead, kubeadapt.ScopeClustersRead}, "prod-eu-1")
	c := e.mint("ci", []string{kubeadapt.ScopeClustersRead})
	e.clock.Advance(time.Minute)
	if _, err := e.s.Revoke(a.ID); err != nil {
		t.Fatal(err)
	}

	tests := map[string]struct {
		query string
		code  int
		ids   []string
	}{
		"all":              {"", 200, []string{a.ID, b.ID, c.ID}},
		"by name":          {"?name=billing", 200, []string{a.ID, b.ID}},
		"by other name":    {"?name=ci", 200, []string{c.ID}},
		"no such name":     {"?name=nope", 200, []string{}},
		"empty name":       {"?name=", 200, []string{}},
		"active":           {"?status=active", 200, []string{b.ID, c.ID}},
		"revoked":          {"?status=revoked", 200, []string{a.ID}},
		"name and status":  {"?name=billing&status=active", 200, []string{b.ID}},
		"bad status value": {"?status=deleted", 422, nil},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			r := e.admin(http.MethodGet, "/admin/v1/api-keys"+tt.query, nil)
			if r.code != tt.code {
				t.Fatalf("code = %d %s", r.code, r.body)
			}
			if tt.code != http.StatusOK {
				r.detail(t)
				return
			}
			if !bytes.Contains(r.body, []byte(`"data":[`)) {
				t.Errorf("body %s has no data array", r.body)
			}
			var got []string
			for _, k := range decode[keyList](t, r.body).Data {
				got = append(got, k.ID)
			}
			if !slices.Equal(got, tt.ids) && !(len(got) == 0 && len(tt.ids) == 0) {
				t.Errorf("ids = %v, want %v", got, tt.ids)
			}
		})
	}

	t.Run("get", func(t *testing.T) {
		r := e.admin(http.MethodGet, "/admin/v1/api-keys/"+a.ID, nil)
		if r.code != http.StatusOK {
			t.Fatalf("code = %d", r.code)
		}
		got := decode[kubeadapt.KeyInfo](t, r.body)
		want := kubeadapt.KeyInfo{ID: a.ID, Name: "billing", Scopes: []string{"costs:read"}, CreatedAt: t0, Status: "revoked"}
		if got.RevokedAt == nil || !got.RevokedAt.Equal(t0.Add(2*time.Minute)) {
			t.Errorf("revoked_at = %v", got.RevokedAt)
		}
		got.RevokedAt = nil
		if got.ID != want.ID || got.Name != want.Name || !slices.Equal(got.Scopes, want.Scopes) ||
			got.AllowedClusterIDs != nil || !got.CreatedAt.Equal(want.CreatedAt) || got.Status != want.Status || got.LastUsedAt != nil {
			t.Errorf("key = %+v, want %+v", got, want)
		}
		for _, field := range []string{`"last_used_at":null`, `"allowed_cluster_ids":null`, `"revoked_at":"`} {
			if !bytes.Contains(r.body, []byte(field)) {
				t.Errorf("body %s lacks %s", r.body, field)
			}
		}
	})
	t.Run("get unknown", func(t *testing.T) {
		r := e.admin(http.MethodGet, "/admin/v1/api-keys/key_nope", nil)
		if r.code != http.StatusNotFound {
			t.Fatalf("code = %d", r.code)
		}
		r.detail(t)
	})
	t.Run("accessors", func(t *testing.T) {
		keys := e.s.Keys()
		if len(keys) != 3 || keys[0].ID != a.ID || keys[0].Status != kubeadapt.StatusRevoked || keys[2].ID != c.ID {
			t.Errorf("Keys() = %+v", keys)
		}
		if _, found := e.s.Key("key_nope"); found {
			t.Error("Key(unknown) found")
		}
	})
}

func TestRevoke(t *testing.T) {
	tests := map[string]struct {
		method, suffix string
		firstCode      int
	}{
		"delete":      {http.MethodDelete, "", http.StatusNoContent},
		"post revoke": {http.MethodPost, "/revoke", http.StatusOK},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			k := e.mint("ci", []string{kubeadapt.ScopeClustersRead})
			e.clock.Advance(time.Hour)
			path := "/admin/v1/api-keys/" + k.ID + tt.suffix

			r := e.admin(tt.method, path, nil)
			if r.code != tt.firstCode {
				t.Fatalf("first revoke: %d %s", r.code, r.body)
			}
			if tt.firstCode == http.StatusOK {
				if got := decode[kubeadapt.KeyInfo](t, r.body); got.Status != kubeadapt.StatusRevoked || got.ID != k.ID {
					t.Errorf("revoke body = %+v", got)
				}
			} else if len(r.body) != 0 {
				t.Errorf("204 with body %q", r.body)
			}
			info, _ := e.s.Key(k.ID)
			if info.Status != kubeadapt.StatusRevoked || info.RevokedAt == nil || !info.RevokedAt.Equal(t0.Add(time.Hour)) {
				t.Errorf("after revoke: %+v", info)
			}

			e.clock.Advance(time.Hour)
			r = e.admin(tt.method, path, nil)
			if r.code != http.StatusConflict || r.detail(t) != "already revoked" {
				t.Errorf("second revoke: %d %s, want 409 already revoked", r.code, r.body)
			}
			if info, _ := e.s.Key(k.ID); !info.RevokedAt.Equal(t0.Add(time.Hour)) {
				t.Errorf("second revoke moved revoked_at to %v", info.RevokedAt)
			}

			r = e.admin(tt.method, "/admin/v1/api-keys/key_unknown"+tt.suffix, nil)
			if r.code != http.StatusNotFound {
				t.Errorf("unknown: %d", r.code)
			}
			r.detail(t)
		})
	}
}

func TestRevokeAccessor(t *testing.T) {
	s := kubeadapt.New(kubeadapt.Options{})
	k, _, err := s.CreateKey(kubeadapt.KeyRequest{Name: "x", Scopes: []string{kubeadapt.ScopeCostsRead}})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Revoke(k.ID); err != nil || got.Status != kubeadapt.StatusRevoked {
		t.Fatalf("Revoke = %+v, %v", got, err)
	}
	if _, err := s.Revoke(k.ID); !errors.Is(err, kubeadapt.ErrAlreadyRevoked) {
		t.Fatalf("second Revoke err = %v", err)
	}
	if _, err := s.Revoke("key_x"); !errors.Is(err, kubeadapt.ErrNotFound) {
		t.Fatalf("unknown Revoke err = %v", err)
	}
}

func TestAdminMethodNotAllowed(t *testing.T) {
	e := newEnv(t)
	k := e.mint("ci", []string{kubeadapt.ScopeClustersRead})
	tests := map[string]struct {
		method, path, allow string
	}{
		"put keys":      {http.MethodPut, "/admin/v1/api-keys", "GET, POST"},
		"post key":      {http.MethodPost, "/admin/v1/api-keys/" + k.ID, "GET, DELETE"},
		"get revoke":    {http.MethodGet, "/admin/v1/api-keys/" + k.ID + "/revoke", "POST"},
		"delete revoke": {http.MethodDelete, "/admin/v1/api-keys/" + k.ID + "/revoke", "POST"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			r := e.admin(tt.method, tt.path, nil)
			if r.code != http.StatusMethodNotAllowed || r.header.Get("Allow") != tt.allow {
				t.Fatalf("got %d Allow=%q, want 405 Allow=%q", r.code, r.header.Get("Allow"), tt.allow)
			}
			r.detail(t)
		})
	}
	if info, _ := e.s.Key(k.ID); info.Status != kubeadapt.StatusActive {
		t.Error("a rejected method revoked the key")
	}
}

// TestSecretNeverLeaves drives every route with a key's whole life and
// asserts the secret appears in no answer but the creation one.
func TestSecretNeverLeaves(t *testing.T) {
	e := newEnv(t)
	k := e.mint("leaky", []string{kubeadapt.ScopeClustersRead, kubeadapt.ScopeCostsRead}, "prod-eu-1")
	other := e.mint("other", []string{kubeadapt.ScopeCostsRead})

	var answers []response
	collect := func(r response) { answers = append(answers, r) }
	for _, p := range []string{"/v1/clusters", "/v1/clusters/prod-eu-1", "/v1/clusters/dev-us-1", "/v1/costs", "/v1/nope"} {
		collect(e.get(p, k.Secret))
	}
	collect(e.do(http.MethodGet, "/v1/clusters?api_key="+k.Secret, "", nil))
	collect(e.admin(http.MethodGet, "/admin/v1/api-keys", nil))
	collect(e.admin(http.MethodGet, "/admin/v1/api-keys?name=leaky", nil))
	collect(e.admin(http.MethodGet, "/admin/v1/api-keys/"+k.ID, nil))
	collect(e.admin(http.MethodPost, "/admin/v1/api-keys/"+k.ID+"/revoke", nil))
	collect(e.admin(http.MethodDelete, "/admin/v1/api-keys/"+k.ID, nil))
	collect(e.get("/v1/clusters", k.Secret))
	collect(e.admin(http.MethodGet, "/admin/v1/api-keys?status=revoked", nil))
	collect(e.do(http.MethodGet, "/metrics", "", nil))

	for i, r := range answers {
		for _, secret := range []string{k.Secret, other.Secret, k.Secret[len(kubeadapt.SecretPrefix):]} {
			if bytes.Contains(r.body, []byte(secret)) {
				t.Errorf("answer %d (%d) contains a secret: %s", i, r.code, r.body)
			}
			for name, vals := range r.header {
				if strings.Contains(strings.Join(vals, " "), secret) {
					t.Errorf("answer %d header %s contains a secret", i, name)
				}
			}
		}
	}
	for _, info := range e.s.Keys() {
		if strings.Contains(fmt.Sprintf("%+v", info), k.Secret) {
			t.Errorf("Keys() exposes a secret")
		}
	}
}
