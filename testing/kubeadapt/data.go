package kubeadapt

import (
	"crypto/sha256"
	"math"
	"net/http"
	"slices"
	"strings"
)

// UnknownKeyID is the key_id label of data requests whose key cannot be
// identified (missing, malformed or unknown); such requests have an empty
// key_name.
const UnknownKeyID = "unknown"

// Cluster is one cluster of the data API.
type Cluster struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Provider  string `json:"provider"`
	Region    string `json:"region"`
	NodeCount int    `json:"node_count"`
	// MonthlyCostUSD is reported by GET /v1/costs, not by the cluster routes.
	MonthlyCostUSD float64 `json:"-"`
}

// DemoClusters returns the clusters a Server serves unless Options.Clusters
// says otherwise.
func DemoClusters() []Cluster {
	return []Cluster{
		{ID: "prod-eu-1", Name: "production-eu", Provider: "aws", Region: "eu-west-1", NodeCount: 42, MonthlyCostUSD: 18250.40},
		{ID: "staging-eu-1", Name: "staging-eu", Provider: "aws", Region: "eu-west-1", NodeCount: 8, MonthlyCostUSD: 2310.75},
		{ID: "dev-us-1", Name: "dev-us", Provider: "gcp", Region: "us-central1", NodeCount: 3, MonthlyCostUSD: 640.10},
	}
}

func cloneClusters(cs []Cluster) []Cluster { return slices.Clone(cs) }

// caller is an identified data API key, as of the request.
type caller struct {
	id, name string
	scopes   []string
	allowed  []string // nil: every cluster
}

func (c caller) can(scope string) bool { return slices.Contains(c.scopes, scope) }

func (c caller) allows(clusterID string) bool {
	return c.allowed == nil || slices.Contains(c.allowed, clusterID)
}

// reply is a data API answer, built before anything is written so that the
// request is counted before the client can see the answer.
type reply struct {
	status int
	body   any
	allow  string // Allow header of a 405
	scope  string // scope missing from a 403
}

func ok(body any) reply { return reply{status: http.StatusOK, body: body} }

func fail(status int, detail string) reply {
	return reply{status: status, body: detailBody{Detail: detail}}
}

type dataFunc func(r *http.Request, c caller) reply

// data wraps a data API handler with key authentication and the request
// counter.
func (s *Server) data(h dataFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, detail, authed := s.authenticate(r)
		var rep reply
		if authed {
			rep = h(r, c)
		} else {
			rep = fail(http.StatusUnauthorized, detail)
			challenge := `Bearer realm="kubeadapt"`
			if r.Header.Get("Authorization") != "" {
				challenge += `, error="invalid_token"`
			}
			w.Header().Set("WWW-Authenticate", challenge)
		}
		switch {
		case rep.status == http.StatusMethodNotAllowed:
			w.Header().Set("Allow", rep.allow)
		case rep.scope != "":
			w.Header().Set("WWW-Authenticate", `Bearer realm="kubeadapt", error="insufficient_scope", scope="`+rep.scope+`"`)
		}
		s.count(c.id, c.name, rep.status)
		writeJSON(w, rep.status, rep.body)
	})
}

// queryKeyParams are query parameters some APIs accept keys in; this one
// does not, and says so when no Authorization header came with them.
var queryKeyParams = []string{"api_key", "apikey", "key", "token", "access_token"}

// bearerToken extracts the token of the single "Authorization: Bearer"
// header, or returns why it cannot. The detail never contains the token.
func bearerToken(r *http.Request) (token, detail string) {
	vals := r.Header.Values("Authorization")
	switch {
	case len(vals) == 0:
		q := r.URL.Query()
		if slices.ContainsFunc(queryKeyParams, q.Has) {
			return "", "api keys are accepted only in the Authorization header"
		}
		return "", "missing Authorization header"
	case len(vals) > 1:
		return "", "multiple Authorization headers"
	}
	scheme, tok, _ := strings.Cut(vals[0], " ")
	switch {
	case !strings.EqualFold(scheme, "Bearer"):
		return "", "Authorization header must use the Bearer scheme"
	case tok == "": // "Bearer " arrives as "Bearer": HTTP trims field values
		return "", "missing bearer token"
	}
	return tok, ""
}

// authenticate identifies the data API key of r. A revoked key is
// identified (for the metrics) but not authenticated. On success it
// records last_used_at.
func (s *Server) authenticate(r *http.Request) (c caller, detail string, authed bool) {
	c = caller{id: UnknownKeyID}
	tok, detail := bearerToken(r)
	if detail != "" {
		return c, detail, false
	}
	if !ValidKeyFormat(tok) {
		return c, "malformed api key", false
	}
	h := sha256.Sum256([]byte(tok))

	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.byHash[h]
	if k == nil {
		return c, "invalid api key", false
	}
	c = caller{id: k.id, name: k.name, scopes: k.scopes, allowed: k.allowed}
	if !k.revokedAt.IsZero() {
		return c, "api key revoked", false
	}
	k.lastUsedAt = s.now().UTC()
	return c, "", true
}

func forbiddenScope(scope string) reply {
	rep := fail(http.StatusForbidden, "api key lacks scope "+scope)
	rep.scope = scope
	return rep
}

func forbiddenCluster(id string) reply {
	return fail(http.StatusForbidden, "api key is not allowed to access cluster "+id)
}

func onlyGet(r *http.Request) (reply, bool) {
	if r.Method != http.MethodGet {
		return reply{status: http.StatusMethodNotAllowed, body: detailBody{Detail: "method not allowed"}, allow: "GET"}, false
	}
	return reply{}, true
}

func dataNotFound(*http.Request, caller) reply { return fail(http.StatusNotFound, "not found") }

func (s *Server) listClusters(r *http.Request, c caller) reply {
	if rep, isGet := onlyGet(r); !isGet {
		return rep
	}
	if !c.can(ScopeClustersRead) {
		return forbiddenScope(ScopeClustersRead)
	}
	out := []Cluster{}
	for _, cl := range s.clusters {
		if c.allows(cl.ID) {
			out = append(out, cl)
		}
	}
	return ok(map[string]any{"data": out})
}

func (s *Server) getCluster(r *http.Request, c caller) reply {
	if rep, isGet := onlyGet(r); !isGet {
		return rep
	}
	if !c.can(ScopeClustersRead) {
		return forbiddenScope(ScopeClustersRead)
	}
	id := r.PathValue("id")
	if !c.allows(id) { // before the lookup: a restricted key learns nothing
		return forbiddenCluster(id)
	}
	i := slices.IndexFunc(s.clusters, func(cl Cluster) bool { return cl.ID == id })
	if i < 0 {
		return fail(http.StatusNotFound, "cluster not found")
	}
	return ok(s.clusters[i])
}

type costEntry struct {
	ClusterID   string  `json:"cluster_id"`
	ClusterName string  `json:"cluster_name"`
	MonthlyCost float64 `json:"monthly_cost"`
}

type costReport struct {
	Currency string      `json:"currency"`
	Data     []costEntry `json:"data"`
	Total    float64     `json:"total"`
}

// listCosts answers GET /v1/costs[?cluster_id=…] for the allowed clusters.
func (s *Server) listCosts(r *http.Request, c caller) reply {
	if rep, isGet := onlyGet(r); !isGet {
		return rep
	}
	if !c.can(ScopeCostsRead) {
		return forbiddenScope(ScopeCostsRead)
	}
	only := r.URL.Query().Get("cluster_id")
	if only != "" && !c.allows(only) {
		return forbiddenCluster(only)
	}
	out := costReport{Currency: "USD", Data: []costEntry{}}
	for _, cl := range s.clusters {
		if !c.allows(cl.ID) || (only != "" && cl.ID != only) {
			continue
		}
		out.Data = append(out.Data, costEntry{ClusterID: cl.ID, ClusterName: cl.Name, MonthlyCost: cl.MonthlyCostUSD})
		out.Total += cl.MonthlyCostUSD
	}
	if only != "" && len(out.Data) == 0 {
		return fail(http.StatusNotFound, "cluster not found")
	}
	out.Total = math.Round(out.Total*100) / 100
	return ok(out)
}
