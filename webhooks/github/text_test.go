package github

import (
	"net/http"
	"strings"
	"testing"
)

// Text GitHub's senders pass on reaches rekey show and notifications:
// control characters in it are refused (400 naming the field) where the
// signed body carries them, and escaped where GitHub's API answers them
// (a leak GitHub reports is acted on even if the text is odd).
func TestPartnerControlCharactersAreRefused(t *testing.T) {
	for field, body := range map[string]string{
		"[0].url":    `[{"token":"` + token + `","type":"kubeadapt_api_key","url":"https://x\u001b[2K\rok","source":"content"}]`,
		"[0].type":   `[{"token":"` + token + `","type":"kubeadapt\u001b[32m","url":"","source":"content"}]`,
		"[1].source": `[{"token":"` + token + `","type":"t","url":"","source":"content"},{"token":"` + unknownToken + `","type":"t","url":"","source":"c\u202eo"}]`,
	} {
		t.Run(field, func(t *testing.T) {
			f := newFixture(t, nil)
			w := f.serve(partnerRequest(t, f.gh, body))
			if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), field+": must be printable text") {
				t.Fatalf("status %d body %s, want 400 naming %s", w.Code, w.Body, field)
			}
			if n := len(f.intake.Exposures()); n != 0 {
				t.Fatalf("%d reports recorded from a refused body", n)
			}
		})
	}
}

func TestAlertControlCharactersAreRefused(t *testing.T) {
	payload := alertPayload("created", "acme", "billing", 7)
	for field, body := range map[string]string{
		"alert.html_url":    strings.Replace(payload, `"html_url":"https://github.com/`, `"html_url":"\u001b]8;;https://evil\u001b\\https://github.com/`, 1),
		"alert.secret_type": strings.Replace(payload, `"secret_type":"kubeadapt_api_key"`, `"secret_type":"kubeadapt\r\u001b[2K"`, 1),
	} {
		t.Run(field, func(t *testing.T) {
			if body == payload {
				t.Fatal("payload not edited")
			}
			f := newFixture(t, nil)
			f.api.addAlert("acme", "billing", 7, alertSecret)
			w := f.serve(alertRequest(hubSecret, "secret_scanning_alert", delivery, body))
			if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), field+": must be printable text") {
				t.Fatalf("status %d body %s, want 400 naming %s", w.Code, w.Body, field)
			}
			if n := len(f.intake.Exposures()); n != 0 || f.api.count() != 0 {
				t.Fatalf("%d reports recorded, %d API calls from a refused body", n, f.api.count())
			}
		})
	}
}

func TestAlertAPIControlCharactersAreEscaped(t *testing.T) {
	f := newFixture(t, nil)
	f.api.addAlert("acme", "billing", 7, alertSecret)
	path := "/repos/acme/billing/secret-scanning/alerts/7"
	f.api.mu.Lock()
	f.api.alerts[path] = strings.Replace(f.api.alerts[path], `"secret_type":"kubeadapt_api_key"`, `"secret_type":"kubeadapt\u001b[2K\r"`, 1)
	f.api.mu.Unlock()
	w := f.serve(alertRequest(hubSecret, "secret_scanning_alert", delivery, alertPayload("created", "acme", "billing", 7)))
	if w.Code != http.StatusAccepted {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	got := f.intake.Exposures()
	if len(got) != 1 || got[0].Type != `kubeadapt\x1b[2K\r` {
		t.Fatalf("reports %+v, want the API's secret type escaped", got)
	}
}
