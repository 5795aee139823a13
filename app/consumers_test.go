package app

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/auth"
	"github.com/rekeyhq/rekey/internal/stdwebhooks"
)

// A consumer attests on the public listener (signed), and a viewer of the
// key reads it back through GET /v1/keys/{key}/consumers on the admin
// listener; a viewer of another key cannot, an unknown key is 404, and
// neither route is served on the other listener.
func TestConsumersThroughBothListeners(t *testing.T) {
	const secret = "whsec_Y29uc3VtZXJzLXNpZ25pbmctc2VjcmV0LTEyMzQ="
	t.Setenv("REKEY_TEST_CONSUMER_SECRET", secret)
	e := newAuthEnv(t, `traffic: [{name: attested, type: consumers, horizon: 1m}]
webhooks: [{name: consumers, type: consumer, secret_env: REKEY_TEST_CONSUMER_SECRET}]
defaults: {drain: {source: attested, quiet_period: 1s}}`)
	attest := func(srv string, body string) int {
		k, _ := stdwebhooks.ParseKey(secret)
		req, _ := http.NewRequest(http.MethodPost, srv+"/v1/consumers/attest", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		k.SetHeaders(req.Header, "msg_"+time.Now().Format("150405.000000000"), time.Now(), []byte(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := attest(e.public.URL, `{"key":"api","consumer":"billing","generation":"api-v1"}`); code != http.StatusAccepted {
		t.Fatalf("attest: %d", code)
	}
	// doctor asks the key's gate its question as a rotation would: a key
	// at rest with an attesting consumer is healthy (was: "no new
	// generation to compare attestations with", always).
	k, _ := e.d.Engine.Key("api")
	for _, q := range trafficQueries(k) {
		if detail, _, err := e.d.trafficCheck(k, q).run(t.Context()); err != nil {
			t.Errorf("doctor's %s check of api: %v", q.what, err)
		} else if !strings.Contains(detail, "answers") {
			t.Errorf("doctor's %s check of api: %q", q.what, detail)
		}
	}
	if code := attest(e.admin.URL, `{"key":"api","consumer":"other","generation":1}`); code != http.StatusNotFound && code != http.StatusMethodNotAllowed {
		t.Fatalf("the admin listener serves attestations: %d", code)
	}
	viewer := e.token("vic@example.com", auth.RoleViewer, "api")
	got := e.api(viewer, "GET", "/v1/keys/api/consumers", nil)
	list, _ := got.body["consumers"].([]any)
	if got.status != 200 || len(list) != 1 || got.body["horizon"] != 60.0 {
		t.Fatalf("viewer of api: %d %v", got.status, got.body)
	}
	c := list[0].(map[string]any)
	if c["name"] != "billing" || c["generation_name"] != "api-v1" || c["state"] != "current" || c["via"] != "consumers" {
		t.Fatalf("consumer %v", c)
	}
	if got := e.api(e.token("dan@example.com", auth.RoleViewer, "db"), "GET", "/v1/keys/api/consumers", nil); got.status != 403 {
		t.Fatalf("viewer of db reads api's consumers: %d", got.status)
	}
	if got := e.api(testBootstrap, "GET", "/v1/keys/nope/consumers", nil); got.status != 404 {
		t.Fatalf("unknown key: %d %v", got.status, got.body)
	}
	if got := e.api("", "GET", "/v1/keys/api/consumers", nil); got.status != 401 {
		t.Fatalf("no token: %d", got.status)
	}
	if got := e.call(e.public, testBootstrap, "GET", "/v1/keys/api/consumers", nil); got.status != 404 && got.status != 405 {
		t.Fatalf("the public listener serves the admin API: %d", got.status)
	}
	desc := e.api(viewer, "GET", "/v1/keys/api", nil)
	dc, _ := desc.body["consumers"].(map[string]any)
	dl, _ := dc["consumers"].([]any)
	if desc.status != 200 || len(dl) != 1 || dl[0].(map[string]any)["name"] != "billing" {
		t.Fatalf("describe does not list the consumer: %d %v", desc.status, desc.body)
	}
	dk, _ := desc.body["key"].(map[string]any)
	if g, _ := dk["gate"].(map[string]any); g["quiet_period"] != 1.0 {
		t.Fatalf("describe's gate (quiet period in seconds): %v", dk["gate"])
	}
	keys, _ := e.api(testBootstrap, "GET", "/v1/keys", nil).body["keys"].([]any)
	gate, _ := keys[0].(map[string]any)["gate"].(map[string]any)
	if proves, _ := gate["proves"].(string); !strings.Contains(proves, "nobody used the old key (attested)") {
		t.Fatalf("GET /v1/keys does not say what the gate proves: %v", gate)
	}
}
