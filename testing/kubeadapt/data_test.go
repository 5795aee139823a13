package kubeadapt_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/testing/kubeadapt"
)

// TestKeyLifecycle follows the reference flow: mint, use, be denied by
// scope and cluster, revoke, and be refused on the very next request.
func TestKeyLifecycle(t *testing.T) {
	e := newEnv(t)
	k := e.mint("billing-exporter", []string{kubeadapt.ScopeClustersRead}, "prod-eu-1")

	steps := []struct {
		name   string
		do     func()
		path   string
		code   int
		detail string
	}{
		{name: "use", path: "/v1/clusters/prod-eu-1", code: 200},
		{name: "list", path: "/v1/clusters", code: 200},
		{name: "wrong scope", path: "/v1/costs", code: 403, detail: "costs:read"},
		{name: "disallowed cluster", path: "/v1/clusters/staging-eu-1", code: 403, detail: "staging-eu-1"},
		{name: "revoke", do: func() {
			if r := e.admin(http.MethodDelete, "/admin/v1/api-keys/"+k.ID, nil); r.code != http.StatusNoContent {
				t.Fatalf("revoke: %d %s", r.code, r.body)
			}
		}, path: "/v1/clusters/prod-eu-1", code: 401, detail: "revoked"},
		{name: "still revoked", path: "/v1/clusters", code: 401, detail: "revoked"},
	}
	for _, st := range steps {
		if st.do != nil {
			st.do()
		}
		r := e.get(st.path, k.Secret)
		if r.code != st.code {
			t.Fatalf("%s: GET %s = %d %s, want %d", st.name, st.path, r.code, r.body, st.code)
		}
		if st.detail != "" {
			if d := r.detail(t); !strings.Contains(d, st.detail) {
				t.Errorf("%s: detail %q, want it to mention %q", st.name, d, st.detail)
			}
		}
	}
	for code, want := range map[int]int{200: 2, 403: 2, 401: 2} {
		if got := e.s.Requests(k.ID, code); got != want {
			t.Errorf("Requests(%s, %d) = %d, want %d", k.ID, code, got, want)
		}
	}
	if got := e.s.Requests(kubeadapt.UnknownKeyID, 401); got != 0 {
		t.Errorf("revoked-key 401s were attributed to unknown: %d", got)
	}
}

func TestDataAuthFailures(t *testing.T) {
	e := newEnv(t)
	live := e.mint("live", []string{kubeadapt.ScopeClustersRead})
	revoked := e.mint("old", []string{kubeadapt.ScopeClustersRead})
	if _, err := e.s.Revoke(revoked.ID); err != nil {
		t.Fatal(err)
	}
	body := live.Secret[len(kubeadapt.SecretPrefix):]
	unknown := kubeadapt.SecretPrefix + strings.Repeat("A", 32)

	tests := map[string]struct {
		headers []string // Authorization values
		query   string
		keyID   string // expected key_id label
		detail  string
		noError bool // WWW-Authenticate without error= (no credentials sent)
	}{
		"missing":              {keyID: kubeadapt.UnknownKeyID, detail: "missing", noError: true},
		"key in query":         {query: "?api_key=" + live.Secret, keyID: kubeadapt.UnknownKeyID, detail: "Authorization header", noError: true},
		"key in token query":   {query: "?token=" + live.Secret, keyID: kubeadapt.UnknownKeyID, detail: "Authorization header", noError: true},
		"basic scheme":         {headers: []string{"Basic " + live.Secret}, keyID: kubeadapt.UnknownKeyID, detail: "Bearer"},
		"token scheme":         {headers: []string{"Token " + live.Secret}, keyID: kubeadapt.UnknownKeyID, detail: "Bearer"},
		"no scheme":            {headers: []string{live.Secret}, keyID: kubeadapt.UnknownKeyID, detail: "Bearer"},
		"empty bearer":         {headers: []string{"Bearer "}, keyID: kubeadapt.UnknownKeyID, detail: "missing"},
		"double space":         {headers: []string{"Bearer  " + live.Secret}, keyID: kubeadapt.UnknownKeyID, detail: "malformed"},
		"inner space":          {headers: []string{"Bearer " + live.Secret[:10] + " " + live.Secret[10:]}, keyID: kubeadapt.UnknownKeyID, detail: "malformed"},
		"bearer only":          {headers: []string{"Bearer"}, keyID: kubeadapt.UnknownKeyID, detail: "missing"},
		"two headers":          {headers: []string{"Bearer " + live.Secret, "Bearer " + live.Secret}, keyID: kubeadapt.UnknownKeyID, detail: "multiple"},
		"no prefix":            {headers: []string{"Bearer " + body}, keyID: kubeadapt.UnknownKeyID, detail: "malformed"},
		"test prefix":          {headers: []string{"Bearer ka_test_" + body}, keyID: kubeadapt.UnknownKeyID, detail: "malformed"},
		"upper prefix":         {headers: []string{"Bearer KA_LIVE_" + body}, keyID: kubeadapt.UnknownKeyID, detail: "malformed"},
		"31 chars":             {headers: []string{"Bearer " + live.Secret[:len(live.Secret)-1]}, keyID: kubeadapt.UnknownKeyID, detail: "malformed"},
		"33 chars":             {headers: []string{"Bearer " + live.Secret + "x"}, keyID: kubeadapt.UnknownKeyID, detail: "malformed"},
		"not base62":           {headers: []string{"Bearer " + live.Secret[:len(live.Secret)-1] + "-"}, keyID: kubeadapt.UnknownKeyID, detail: "malformed"},
		"unknown key":          {headers: []string{"Bearer " + unknown}, keyID: kubeadapt.UnknownKeyID, detail: "invalid"},
		"admin token":          {headers: []string{"Bearer " + adminToken}, keyID: kubeadapt.UnknownKeyID, detail: "malformed"},
		"revoked key":          {headers: []string{"Bearer " + revoked.Secret}, keyID: revoked.ID, detail: "revoked"},
		"revoked, any case":    {headers: []string{"BEARER " + revoked.Secret}, keyID: revoked.ID, detail: "revoked"},
		"revoked, unknown url": {headers: []string{"Bearer " + revoked.Secret}, query: "x", keyID: revoked.ID, detail: "revoked"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			for _, path := range []string{"/v1/clusters", "/v1/clusters/prod-eu-1", "/v1/costs"} {
				before := e.s.Requests(tt.keyID, 401)
				req, err := http.NewRequest(http.MethodGet, e.url+path+tt.query, nil)
				if err != nil {
					t.Fatal(err)
				}
				for _, h := range tt.headers {
					req.Header.Add("Authorization", h)
				}
				r := send(t, req)
				if r.code != http.StatusUnauthorized {
					t.Fatalf("GET %s = %d %s, want 401", path, r.code, r.body)
				}
				if d := r.detail(t); !strings.Contains(d, tt.detail) {
					t.Errorf("detail = %q, want it to mention %q", d, tt.detail)
				}
				challenge := r.header.Get("WWW-Authenticate")
				if !strings.HasPrefix(challenge, "Bearer") || strings.Contains(challenge, "invalid_token") == tt.noError {
					t.Errorf("WWW-Authenticate = %q", challenge)
				}
				if got := e.s.Requests(tt.keyID, 401); got != before+1 {
					t.Errorf("Requests(%s, 401) went %d -> %d, want +1", tt.keyID, before, got)
				}
			}
		})
	}
	if info, _ := e.s.Key(live.ID); info.LastUsedAt != nil {
		t.Errorf("a refused request marked the live key used at %v", info.LastUsedAt)
	}
	if info, _ := e.s.Key(revoked.ID); info.LastUsedAt != nil {
		t.Errorf("a revoked key was marked used at %v", info.LastUsedAt)
	}
}

func TestDataAuthorization(t *testing.T) {
	all := []string{"prod-eu-1", "staging-eu-1", "dev-us-1"}
	tests := map[string]struct {
		scopes   []string
		clusters []string
		path     string
		code     int
		ids      []string // cluster ids listed by /v1/clusters, or costed by /v1/costs
		scope    string   // scope named in the 403 challenge
	}{
		"list all":                  {scopes: []string{"clusters:read"}, path: "/v1/clusters", code: 200, ids: all},
		"list restricted":           {scopes: []string{"clusters:read"}, clusters: []string{"dev-us-1", "prod-eu-1"}, path: "/v1/clusters", code: 200, ids: []string{"prod-eu-1", "dev-us-1"}},
		"list restricted to none":   {scopes: []string{"clusters:read"}, clusters: []string{"gone-1"}, path: "/v1/clusters", code: 200, ids: []string{}},
		"list without scope":        {scopes: []string{"costs:read"}, path: "/v1/clusters", code: 403, scope: "clusters:read"},
		"list with write only":      {scopes: []string{"clusters:write"}, path: "/v1/clusters", code: 403, scope: "clusters:read"},
		"get allowed":               {scopes: []string{"clusters:read"}, clusters: []string{"dev-us-1"}, path: "/v1/clusters/dev-us-1", code: 200, ids: []string{"dev-us-1"}},
		"get unrestricted":          {scopes: []string{"clusters:read"}, path: "/v1/clusters/staging-eu-1", code: 200, ids: []string{"staging-eu-1"}},
		"get disallowed":            {scopes: []string{"clusters:read"}, clusters: []string{"dev-us-1"}, path: "/v1/clusters/prod-eu-1", code: 403},
		"get unknown, restricted":   {scopes: []string{"clusters:read"}, clusters: []string{"dev-us-1"}, path: "/v1/clusters/nope", code: 403},
		"get unknown, unrestricted": {scopes: []string{"clusters:read"}, path: "/v1/clusters/nope", code: 404},
		"get without scope":         {scopes: []string{"costs:read"}, path: "/v1/clusters/dev-us-1", code: 403, scope: "clusters:read"},
		"costs all":                 {scopes: []string{"costs:read"}, path: "/v1/costs", code: 200, ids: all},
		"costs restricted":          {scopes: []string{"costs:read"}, clusters: []string{"staging-eu-1"}, path: "/v1/costs", code: 200, ids: []string{"staging-eu-1"}},
		"costs one cluster":         {scopes: []string{"costs:read"}, path: "/v1/costs?cluster_id=dev-us-1", code: 200, ids: []string{"dev-us-1"}},
		"costs disallowed cluster":  {scopes: []string{"costs:read"}, clusters: []string{"staging-eu-1"}, path: "/v1/costs?cluster_id=dev-us-1", code: 403},
		"costs unknown cluster":     {scopes: []string{"costs:read"}, path: "/v1/costs?cluster_id=nope", code: 404},
		"costs without scope":       {scopes: []string{"clusters:read"}, path: "/v1/costs", code: 403, scope: "costs:read"},
		"unknown route":             {scopes: []string{"clusters:read"}, path: "/v1/workloads", code: 404},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			k := e.mint("k", tt.scopes, tt.clusters...)
			r := e.get(tt.path, k.Secret)
			if r.code != tt.code {
				t.Fatalf("GET %s = %d %s, want %d", tt.path, r.code, r.body, tt.code)
			}
			if got := e.s.Requests(k.ID, tt.code); got != 1 {
				t.Errorf("Requests(%s, %d) = %d, want 1", k.ID, tt.code, got)
			}
			if tt.code != http.StatusOK {
				r.detail(t)
				if tt.scope != "" && !strings.Contains(r.header.Get("WWW-Authenticate"), `scope="`+tt.scope+`"`) {
					t.Errorf("WWW-Authenticate = %q, want scope %s", r.header.Get("WWW-Authenticate"), tt.scope)
				}
				return
			}
			var got []string
			switch {
			case strings.HasPrefix(tt.path, "/v1/costs"):
				rep := decode[struct {
					Currency string
					Data     []struct {
						ClusterID   string  `json:"cluster_id"`
						MonthlyCost float64 `json:"monthly_cost"`
					}
					Total float64
				}](t, r.body)
				sum := 0.0
				got = []string{}
				for _, d := range rep.Data {
					got, sum = append(got, d.ClusterID), sum+d.MonthlyCost
				}
				if rep.Currency != "USD" || rep.Total <= 0 || rep.Total-sum > 0.01 || sum-rep.Total > 0.01 {
					t.Errorf("cost report = %+v", rep)
				}
			case tt.path == "/v1/clusters":
				got = clusterIDs(decode[clusterList](t, r.body).Data)
			default:
				got = []string{decode[kubeadapt.Cluster](t, r.body).ID}
			}
			if !slices.Equal(got, tt.ids) {
				t.Errorf("clusters = %v, want %v", got, tt.ids)
			}
		})
	}
}

func TestLastUsedAt(t *testing.T) {
	e := newEnv(t)
	k := e.mint("k", []string{kubeadapt.ScopeClustersRead})
	lastUsed := func() *time.Time {
		info, _ := e.s.Key(k.ID)
		return info.LastUsedAt
	}
	if got := lastUsed(); got != nil {
		t.Fatalf("fresh key used at %v", got)
	}
	steps := []struct {
		path    string
		advance time.Duration
		want    time.Time
	}{
		{"/v1/clusters", time.Minute, t0.Add(time.Minute)},
		{"/v1/costs", time.Minute, t0.Add(2 * time.Minute)}, // 403: the key still authenticated
	}
	for _, st := range steps {
		e.clock.Advance(st.advance)
		e.get(st.path, k.Secret)
		if got := lastUsed(); got == nil || !got.Equal(st.want) {
			t.Fatalf("after %s: last_used_at = %v, want %v", st.path, got, st.want)
		}
	}
	if _, err := e.s.Revoke(k.ID); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	if r := e.get("/v1/clusters", k.Secret); r.code != http.StatusUnauthorized {
		t.Fatalf("revoked: %d", r.code)
	}
	if got := lastUsed(); !got.Equal(t0.Add(2 * time.Minute)) {
		t.Errorf("a refused request moved last_used_at to %v", got)
	}
}

func TestDataMethodNotAllowed(t *testing.T) {
	e := newEnv(t)
	k := e.mint("k", kubeadapt.Scopes())
	for name, path := range map[string]string{"clusters": "/v1/clusters", "cluster": "/v1/clusters/dev-us-1", "costs": "/v1/costs"} {
		t.Run(name, func(t *testing.T) {
			r := e.do(http.MethodPost, path, "Bearer "+k.Secret, `{}`)
			if r.code != http.StatusMethodNotAllowed || r.header.Get("Allow") != "GET" {
				t.Fatalf("POST %s = %d Allow=%q", path, r.code, r.header.Get("Allow"))
			}
			r.detail(t)
			// Authentication comes first: no key, no hint about the route.
			if r := e.do(http.MethodPost, path, "", `{}`); r.code != http.StatusUnauthorized {
				t.Errorf("POST %s without key = %d, want 401", path, r.code)
			}
		})
	}
}

func TestCustomClusters(t *testing.T) {
	s := kubeadapt.New(kubeadapt.Options{Clusters: []kubeadapt.Cluster{{ID: "c1", Name: "one"}}})
	_, secret, err := s.CreateKey(kubeadapt.KeyRequest{Name: "k", Scopes: []string{kubeadapt.ScopeClustersRead}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Start("127.0.0.1:0"); err == nil {
		t.Error("second Start succeeded")
	}
	req, err := http.NewRequest(http.MethodGet, s.URL()+"/v1/clusters", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	r := send(t, req)
	if got := clusterIDs(decode[clusterList](t, r.body).Data); r.code != 200 || !slices.Equal(got, []string{"c1"}) {
		t.Fatalf("GET /v1/clusters = %d %v", r.code, got)
	}
}
