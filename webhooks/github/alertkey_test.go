package github

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/rekeyhq/rekey/rotator"
)

// TestAlertDeduplicatesOnTheSignedBody: a signed alert replayed under a new
// X-GitHub-Delivery id (the header is not signed) is a duplicate, with the
// same report ID; another action on the same alert is a new event.
func TestAlertDeduplicatesOnTheSignedBody(t *testing.T) {
	f := newFixture(t, nil)
	f.api.addAlert("acme", "billing", 7, alertSecret)
	body := alertPayload("created", "acme", "billing", 7)
	answer := func(r *http.Request) alertAnswer {
		t.Helper()
		w := f.serve(r)
		var a alertAnswer
		if err := json.Unmarshal(w.Body.Bytes(), &a); w.Code != http.StatusAccepted || err != nil {
			t.Fatalf("status %d %s", w.Code, w.Body)
		}
		return a
	}
	if a := answer(alertRequest(hubSecret, "secret_scanning_alert", delivery, body)); a.Duplicate {
		t.Fatal("the first delivery is a duplicate")
	}
	if a := answer(alertRequest(hubSecret, "secret_scanning_alert", "forged-delivery-0001", body)); !a.Duplicate {
		t.Fatal("the same signed body under a new X-GitHub-Delivery was taken as a new event")
	}
	answer(alertRequest(hubSecret, "secret_scanning_alert", "another-delivery-0002", alertPayload("reopened", "acme", "billing", 7)))
	got := f.intake.Exposures()
	if len(got) != 3 || got[0].ID != got[1].ID || got[2].ID == got[0].ID {
		t.Fatalf("report ids %v; want the replay to share the first's and the reopening to differ", ids(got))
	}
	if want := "github-alert:acme/billing#7:created"; got[0].ID != want {
		t.Fatalf("report id %q, want %q", got[0].ID, want)
	}
}

func TestAlertKeyFoldsCase(t *testing.T) {
	if alertKey("Acme", "Billing", 7, "created") != alertKey("acme", "billing", 7, "created") {
		t.Fatal("GitHub names are case-insensitive; the key must be too")
	}
}

func ids(rs []rotator.ExposureReport) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}
