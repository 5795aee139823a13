package http_test

import (
	"context"
	nethttp "net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	rkhttp "github.com/rekeyhq/rekey/issuers/http"
	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/testing/kubeadapt"
)

func TestMintUseRevoke(t *testing.T) {
	e := newKAEnv(t)
	ctx := context.Background()

	m := e.mint(t, "ci-v1", kubeadapt.ScopeClustersRead)
	if !kubeadapt.ValidKeyFormat(m.Secret.Reveal()) {
		t.Fatalf("minted secret has not the ka_live_ format")
	}
	info, ok := e.ka.Key(m.ID)
	if !ok || info.Name != "ci-v1" || !slices.Equal(info.Scopes, []string{kubeadapt.ScopeClustersRead}) || info.AllowedClusterIDs != nil {
		t.Fatalf("key at the issuer = %+v (found %v)", info, ok)
	}
	if got := e.dataStatus(t, m.Secret); got != nethttp.StatusOK {
		t.Fatalf("data API with the new key: %d, want 200", got)
	}

	ref := rotator.CredentialRef{Key: "ci", Name: "ci-v1", Generation: 1, ID: m.ID}
	if err := e.issuer.Revoke(ctx, ref); err != nil {
		assertNoLeak(t, err, m.Secret.Reveal())
		t.Fatalf("Revoke: %v", err)
	}
	if got := e.dataStatus(t, m.Secret); got != nethttp.StatusUnauthorized {
		t.Fatalf("data API after revoke: %d, want 401", got)
	}
	// Revoking again (a replay after a crash) is success: the API answers
	// 409, listed in already_revoked.
	if err := e.issuer.Revoke(ctx, ref); err != nil {
		t.Fatalf("second Revoke: %v", err)
	}
	if !strings.Contains(e.logs.String(), "already revoked") {
		t.Errorf("second revoke not logged as already revoked:\n%s", e.logs)
	}
}

func TestMintBodyEncodesValues(t *testing.T) {
	e := newKAEnv(t)
	req := mintRequest(`team "a" \ b-v2`, kubeadapt.ScopeCostsRead)
	req.Params["allowed_cluster_ids"] = []any{"prod-eu-1", "dev-us-1"}
	m, err := e.issuer.Mint(context.Background(), req)
	if err != nil {
		t.Fatalf("Mint: %v", err)
	}
	info, _ := e.ka.Key(m.ID)
	if info.Name != req.Name || !slices.Equal(info.AllowedClusterIDs, []string{"prod-eu-1", "dev-us-1"}) {
		t.Fatalf("key at the issuer = %+v", info)
	}
}

func TestFailuresAreClassified(t *testing.T) {
	tests := map[string]struct {
		fail      int // FailNext status, 0 for none
		token     string
		op        string // mint, revoke, list
		id        string // for revoke
		permanent bool
		reason    rotator.Reason
		contains  []string
		after     time.Duration
	}{
		"mint 503 retryable with retry-after": {fail: 503, op: "mint", reason: rotator.ReasonTransient, contains: []string{"HTTP 503", "retry after 1s", "POST"}, after: time.Second},
		"mint 500 retryable":                  {fail: 500, op: "mint", reason: rotator.ReasonTransient, contains: []string{"HTTP 500"}},
		"mint 429 rate limited":               {fail: 429, op: "mint", reason: rotator.ReasonRateLimited, contains: []string{"HTTP 429", "retry after 1s"}, after: time.Second},
		"revoke 502 retryable":                {fail: 502, op: "revoke", id: "key_x", reason: rotator.ReasonTransient},
		"list 503 retryable":                  {fail: 503, op: "list", reason: rotator.ReasonTransient, after: time.Second},
		"mint 401 bad admin token":            {token: "wrong-admin-token", op: "mint", permanent: true, reason: rotator.ReasonAuth, contains: []string{"HTTP 401", "admin credentials were rejected"}},
		"revoke 401 bad admin token":          {token: "wrong-admin-token", op: "revoke", id: "key_x", permanent: true, reason: rotator.ReasonAuth, contains: []string{"HTTP 401"}},
		"list 401 bad admin token":            {token: "wrong-admin-token", op: "list", permanent: true, reason: rotator.ReasonAuth, contains: []string{"HTTP 401"}},
		"mint 403":                            {fail: 403, op: "mint", permanent: true, reason: rotator.ReasonAuth, contains: []string{"HTTP 403", "lack a permission"}},
		"revoke unknown id 404":               {op: "revoke", id: "key_unknown", permanent: true, reason: rotator.ReasonInvalid, contains: []string{"HTTP 404", "key_unknown"}},
		"mint 400 injected":                   {fail: 400, op: "mint", permanent: true, reason: rotator.ReasonInvalid, contains: []string{"HTTP 400"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newKAEnv(t)
			is := e.issuer
			if tc.token != "" {
				t.Setenv("KA_ADMIN_TOKEN", tc.token)
			}
			if tc.fail != 0 {
				e.ka.FailNext(1, tc.fail)
			}
			ctx := context.Background()
			var err error
			switch tc.op {
			case "mint":
				var m rotator.Minted
				m, err = is.Mint(ctx, mintRequest("ci-v1", kubeadapt.ScopeClustersRead))
				if !m.Secret.IsZero() || m.ID != "" {
					t.Errorf("failed Mint returned %q/%v", m.ID, m.Secret)
				}
			case "revoke":
				err = is.Revoke(ctx, rotator.CredentialRef{Key: "ci", Name: "ci-v1", ID: tc.id})
			case "list":
				_, err = is.FindByName(ctx, "ci", "ci-v1")
			}
			assertClass(t, err, tc.permanent, tc.reason, tc.contains...)
			assertNoLeak(t, err, tc.token)
			if got := retryAfter(err); got != tc.after {
				t.Errorf("RetryAfter = %s, want %s", got, tc.after)
			}
			if tc.fail != 0 && tc.op == "mint" && len(e.ka.Keys()) != 0 {
				t.Errorf("failed mint left keys at the issuer: %v", e.ka.Keys())
			}
		})
	}
}

func TestMint422ScopeIsInvalid(t *testing.T) {
	e := newKAEnv(t)
	_, err := e.issuer.Mint(context.Background(), mintRequest("ci-v1", "root:all"))
	assertClass(t, err, true, rotator.ReasonInvalid, "HTTP 422")
	// A key without scopes in its params renders "scopes": null.
	_, err = e.issuer.Mint(context.Background(), rotator.MintRequest{Key: "ci", Name: "ci-v1"})
	assertClass(t, err, true, rotator.ReasonInvalid, "HTTP 422")
}

func TestMissingAdminTokenIsPermanentAuth(t *testing.T) {
	e := newKAEnv(t)
	t.Setenv("KA_ADMIN_TOKEN", "")
	_, err := e.issuer.Mint(context.Background(), mintRequest("ci-v1", kubeadapt.ScopeClustersRead))
	assertClass(t, err, true, rotator.ReasonAuth, "KA_ADMIN_TOKEN")

	if _, err := rkhttp.New(e.cfg, nil); err == nil || !strings.HasPrefix(err.Error(), "auth: ") {
		t.Errorf("New without the token: %v, want an auth: error", err)
	}
}

func TestFindByName(t *testing.T) {
	e := newKAEnv(t)
	ctx := context.Background()
	// Minted but never recorded: the result is thrown away, as by a crash.
	lost := e.mint(t, "ci-v2", kubeadapt.ScopeClustersRead)
	other := e.mint(t, "ci-v3", kubeadapt.ScopeClustersRead)
	_ = e.mint(t, "ci-v2-suffix", kubeadapt.ScopeClustersRead)

	find := func(name string) []string {
		t.Helper()
		ids, err := e.issuer.FindByName(ctx, "ci", name)
		if err != nil {
			t.Fatalf("FindByName(%s): %v", name, err)
		}
		return ids
	}
	if got := find("ci-v2"); !slices.Equal(got, []string{lost.ID}) {
		t.Fatalf("FindByName(ci-v2) = %v, want [%s]", got, lost.ID)
	}
	if got := find("ci-v9"); got == nil || len(got) != 0 {
		t.Fatalf("FindByName(ci-v9) = %#v, want empty", got)
	}
	if err := e.issuer.Revoke(ctx, rotator.CredentialRef{Key: "ci", Name: "ci-v2", ID: lost.ID}); err != nil {
		t.Fatal(err)
	}
	if got := find("ci-v2"); len(got) != 0 {
		t.Fatalf("FindByName after revoke = %v, want none (revoked keys are not live)", got)
	}
	if got := find("ci-v3"); !slices.Equal(got, []string{other.ID}) {
		t.Fatalf("FindByName(ci-v3) = %v", got)
	}
}

func TestVerify(t *testing.T) {
	e := newKAEnv(t)
	ctx := context.Background()
	good := e.mint(t, "good-v1", kubeadapt.ScopeClustersRead)
	noScope := e.mint(t, "costs-v1", kubeadapt.ScopeCostsRead)
	revoked := e.mint(t, "old-v1", kubeadapt.ScopeClustersRead)
	if _, err := e.ka.Revoke(revoked.ID); err != nil {
		t.Fatal(err)
	}
	unknown := rotator.NewSecret(kubeadapt.SecretPrefix + strings.Repeat("A", 32))

	notCfg := e.cfg
	v := *notCfg.Verify
	v.Expect, v.Not = nil, []any{401}
	notCfg.Verify = &v
	notIssuer := e.newIssuer(t, notCfg)

	tests := map[string]struct {
		issuer    *rkhttp.Issuer
		secret    rotator.Secret
		ok        bool
		permanent bool
		reason    rotator.Reason
		contains  []string
	}{
		"working key passes":             {issuer: e.issuer, secret: good.Secret, ok: true},
		"key lacking the scope fails":    {issuer: e.issuer, secret: noScope.Secret, permanent: true, reason: rotator.ReasonAuth, contains: []string{"HTTP 403", "/v1/clusters"}},
		"revoked key fails":              {issuer: e.issuer, secret: revoked.Secret, permanent: true, reason: rotator.ReasonAuth, contains: []string{"HTTP 401", "refused"}},
		"unknown key fails":              {issuer: e.issuer, secret: unknown, permanent: true, reason: rotator.ReasonAuth, contains: []string{"HTTP 401"}},
		"not 401: scope-less key passes": {issuer: notIssuer, secret: noScope.Secret, ok: true},
		"not 401: revoked key fails":     {issuer: notIssuer, secret: revoked.Secret, permanent: true, reason: rotator.ReasonAuth, contains: []string{"HTTP 401"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.issuer.Verify(ctx, "ci", tc.secret, nil)
			assertNoLeak(t, err, tc.secret.Reveal())
			if tc.ok {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			assertClass(t, err, tc.permanent, tc.reason, tc.contains...)
		})
	}
}

func TestVerifyWithoutProbe(t *testing.T) {
	e := newKAEnv(t)
	cfg := e.cfg
	cfg.Verify = nil
	err := e.newIssuer(t, cfg).Verify(context.Background(), "ci", rotator.NewSecret("x"), nil)
	assertClass(t, err, true, rotator.ReasonInvalid, "no verify probe configured")
}

// TestMalformedMintAnswerNeverQuotesIt serves mint answers that carry a
// secret but not what the configuration expects.
func TestMalformedMintAnswerNeverQuotesIt(t *testing.T) {
	const secret = "ka_live_SECRETSECRETSECRETSECRETSECRET00"
	tests := map[string]struct {
		status   int
		body     string
		contains string
	}{
		"no id":             {201, `{"secret":"` + secret + `"}`, `no id at mint.id_path "id"`},
		"no secret":         {201, `{"id":"key_1","token":"` + secret + `"}`, `no string at mint.secret_path "secret"`},
		"not json":          {201, `secret=` + secret, "not JSON"},
		"error echoes body": {400, `{"detail":"bad request ` + secret + `"}`, "HTTP 400"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ts := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, _ *nethttp.Request) {
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			t.Cleanup(ts.Close)
			t.Setenv("KA_ADMIN_TOKEN", adminToken)
			logs := &syncBuffer{}
			e := &kaEnv{logs: logs}
			is := e.newIssuer(t, exampleConfig(t, ts.URL))
			_, err := is.Mint(context.Background(), mintRequest("ci-v1", kubeadapt.ScopeClustersRead))
			assertClass(t, err, true, rotator.ReasonInvalid, tc.contains)
			assertNoLeak(t, err, secret)
			if strings.Contains(logs.String(), secret) {
				t.Errorf("logs leak the secret: %s", logs)
			}
		})
	}
}

// TestRedirectsAreNotFollowed: credentials never travel to another URL.
func TestRedirectsAreNotFollowed(t *testing.T) {
	hit := false
	elsewhere := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, _ *nethttp.Request) { hit = true }))
	t.Cleanup(elsewhere.Close)
	ts := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		nethttp.Redirect(w, r, elsewhere.URL+r.URL.Path, nethttp.StatusTemporaryRedirect)
	}))
	t.Cleanup(ts.Close)
	t.Setenv("KA_ADMIN_TOKEN", adminToken)
	e := &kaEnv{logs: &syncBuffer{}}
	is := e.newIssuer(t, exampleConfig(t, ts.URL))
	_, err := is.Mint(context.Background(), mintRequest("ci-v1", kubeadapt.ScopeClustersRead))
	assertClass(t, err, true, rotator.ReasonInvalid, "HTTP 307")
	if hit {
		t.Error("the redirect was followed")
	}
}

func TestTransportFailureIsTransient(t *testing.T) {
	ts := httptest.NewServer(nethttp.NotFoundHandler())
	url := ts.URL
	ts.Close()
	t.Setenv("KA_ADMIN_TOKEN", adminToken)
	e := &kaEnv{logs: &syncBuffer{}}
	is := e.newIssuer(t, exampleConfig(t, url))
	err := is.Revoke(context.Background(), rotator.CredentialRef{Name: "ci-v1", ID: "key_1"})
	assertClass(t, err, false, rotator.ReasonTransient, "DELETE "+url+"/admin/v1/api-keys/key_1")
	assertNoLeak(t, err)
}
