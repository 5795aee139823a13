package app

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/auth"
	"github.com/rekeyhq/rekey/rotator"
)

// GET /v1/keys/{key} describes a key to whoever may read it: credentials
// by generation with a fingerprint prefix, what the sink holds by
// generation name, history; never a value. Other keys' readers get 403,
// unknown keys 404.
func TestDescribeKey(t *testing.T) {
	e := newAuthEnv(t, "")
	viewer, other := e.token("vera@example.com", auth.RoleViewer, "api"), e.token("olga@example.com", auth.RoleViewer, "db")
	a := e.api(viewer, "GET", "/v1/keys/api", nil)
	if a.status != 200 {
		t.Fatalf("describe: %d %v", a.status, a.body)
	}
	raw, _ := json.Marshal(a.body)
	var d KeyDescription
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Credentials) != 1 || d.Credentials[0].Name != "api-v1" || len(d.Credentials[0].Fingerprint) != fingerprintPrefix {
		t.Fatalf("credentials %+v", d.Credentials)
	}
	if len(d.Sinks) != 1 || d.Sinks[0].Current != "api-v1" || !d.Sinks[0].Managed {
		t.Fatalf("sinks %+v", d.Sinks)
	}
	if len(d.History) != 1 || d.Policy.Approval == nil || d.Policy.Approval.Required != 2 || d.Policy.MaxAge <= 0 {
		t.Fatalf("history %d, policy %+v", len(d.History), d.Policy)
	}
	creds, _ := e.d.Store.Credentials(context.Background(), "api")
	sinkDoc := readSink(t, e, "api")
	if strings.Contains(string(raw), creds[0].Fingerprint) || strings.Contains(string(raw), sinkDoc) {
		t.Fatal("describe shows a whole fingerprint or a secret value")
	}
	if a := e.api(other, "GET", "/v1/keys/api", nil); a.status != 403 {
		t.Fatalf("a reader of db only: %d", a.status)
	}
	// A principal scoped to other keys cannot tell an unknown key from one
	// it may not read; one who may read every key gets 404.
	if a := e.api(viewer, "GET", "/v1/keys/nosuch", nil); a.status != 403 {
		t.Fatalf("unknown key, scoped viewer: %d, want 403 (no enumeration)", a.status)
	}
	if a := e.api(e.token("una@example.com", auth.RoleViewer, ""), "GET", "/v1/keys/nosuch", nil); a.status != 404 {
		t.Fatalf("unknown key: %d", a.status)
	}
}

// readSink returns the current value the file sink holds for key.
func readSink(t *testing.T, e *authEnv, key string) string {
	t.Helper()
	dir, _ := e.d.Config.Sinks[0].Settings["dir"].(string)
	b, err := os.ReadFile(filepath.Join(dir, key+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Current struct{ Value string } `json:"current"`
	}
	if err := json.Unmarshal(b, &doc); err != nil || doc.Current.Value == "" {
		t.Fatalf("sink document: %v %s", err, b)
	}
	return doc.Current.Value
}

// Decommission and scanner reports are the responder's: an operator gets
// 403 and nothing happens; a responder decommissions, and a report of a
// token that matches nothing answers with the finding unmatched.
func TestDecommissionAndReportNeedTheResponder(t *testing.T) {
	e := newAuthEnv(t, "")
	op, resp := e.token("oscar@example.com", auth.RoleOperator, ""), e.token("rita@example.com", auth.RoleResponder, "")
	if a := e.api(op, "POST", "/v1/keys/legacy/decommission", map[string]string{"reason": "retired"}); a.status != 403 {
		t.Fatalf("operator decommission: %d %v", a.status, a.body)
	}
	if r, _ := e.d.Store.ActiveRotation(context.Background(), "legacy"); r != nil {
		t.Fatal("a refused decommission started a rotation")
	}
	a := e.api(resp, "POST", "/v1/keys/legacy/decommission", map[string]string{"reason": "retired"})
	if a.status != 201 || a.body["trigger"] != "decommission" || a.body["actor"] != "rita@example.com" {
		t.Fatalf("responder decommission: %d %v", a.status, a.body)
	}
	report := `[{"RuleID":"generic-api-key","Secret":"ka_live_nothingmatchesthis0000000000","File":"x.env","StartLine":1,"Commit":"abc"}]`
	post := func(token string) (int, map[string]any) {
		req, _ := http.NewRequest("POST", e.admin.URL+"/v1/report?format=gitleaks", bytes.NewReader([]byte(report)))
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(res.Body).Decode(&body)
		return res.StatusCode, body
	}
	if code, body := post(op); code != 403 {
		t.Fatalf("operator report: %d %v", code, body)
	}
	if code, body := post(resp); code != 200 || body["findings"] != 1.0 || body["known"] != 0.0 {
		t.Fatalf("responder report: %d %v", code, body)
	}
}

// describe reads one key's records, not every key's; what it shows of the
// key is the same view status shows, in every state: current, waiting for
// approval, decommissioned.
func TestDescribeShowsTheKeyAsStatusDoes(t *testing.T) {
	e := newAuthEnv(t, "")
	ctx := context.Background()
	if _, err := e.d.Engine.Trigger(ctx, rotator.TriggerRequest{Key: "api", Trigger: rotator.TriggerManual, Mode: rotator.ModeStaged, Actor: "olga@example.com"}); err != nil {
		t.Fatal(err)
	}
	r, err := e.d.Engine.Trigger(ctx, rotator.TriggerRequest{Key: "legacy", Trigger: rotator.TriggerDecommission, Mode: rotator.ModeEmergency, Actor: "rita@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	waitPhase(t, e.d, r.ID, rotator.PhaseDone)
	now := time.Now()
	views, err := e.d.KeyViews(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, v := range views {
		d, err := e.d.Describe(ctx, v.Name, 5, now)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(d.Key, v) {
			t.Errorf("%s: describe shows\n%+v\nstatus shows\n%+v", v.Name, d.Key, v)
		}
		states[v.Name] = v.State
	}
	if !strings.HasPrefix(states["api"], "waiting") && !strings.HasPrefix(states["api"], "rotating") || states["legacy"] != "decommissioned" || states["db"] != "current" {
		t.Fatalf("the test did not reach the states it compares: %v", states)
	}
}
