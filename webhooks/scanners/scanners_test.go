package scanners

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/rekeyhq/rekey/rotator"
)

const (
	kaToken  = "ka_live_LEAKEDleakedLEAKEDleaked012345"
	awsID    = "AKIAYVP4CIPPERUVIFXG"
	ghSecret = "ghp_GITLEAKSgitleaksGITLEAKSgitleaks01"
)

// trufflehogOutput is `trufflehog git … --json` output (v3: Raw as a
// string), with a log line captured from stderr among the results.
var trufflehogOutput = strings.Join([]string{
	`{"SourceMetadata":{"Data":{"Git":{"commit":"fbc14303ffbf8fb1c2c1914e8dda7d0121633aca","file":"keys","email":"counter \u003ccounter@example.com\u003e","repository":"https://github.com/trufflesecurity/test_keys","timestamp":"2022-06-16 10:17:40 -0700 -0700","line":4}}},"SourceID":1,"SourceType":16,"SourceName":"trufflehog - git","DetectorType":2,"DetectorName":"AWS","DecoderName":"PLAIN","Verified":true,"Raw":"` + awsID + `","RawV2":"` + awsID + `wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY","Redacted":"` + awsID + `","ExtraData":{"account":"595918472158"},"StructuredData":null}`,
	`{"level":"info-0","ts":"2024-05-01T10:00:00Z","logger":"trufflehog","msg":"running source","source_manager_worker_id":"abc"}`,
	`{"SourceMetadata":{"Data":{"Github":{"link":"https://github.com/acme/billing/blob/77b2a3e/.env#L3","repository":"https://github.com/acme/billing.git","commit":"77b2a3e56973785a52ba4ae4b8dac61d4bac016f","file":".env","line":3}}},"SourceID":2,"SourceType":7,"SourceName":"trufflehog - github","DetectorType":1000,"DetectorName":"Kubeadapt","DecoderName":"PLAIN","Verified":false,"Raw":"` + kaToken + `","RawV2":"","Redacted":"ka_live_LEA…","ExtraData":null,"StructuredData":null}`,
	``,
	`{"SourceMetadata":{"Data":{"Filesystem":{"file":"/srv/app/config.yaml","line":"12"}}},"SourceName":"trufflehog - filesystem","DetectorName":"Kubeadapt","Raw":"` + kaToken + `"}`,
	// The same finding twice (TruffleHog repeats results across decoders).
	`{"SourceMetadata":{"Data":{"Filesystem":{"file":"/srv/app/config.yaml","line":12}}},"SourceName":"trufflehog - filesystem","DetectorName":"Kubeadapt","Raw":"` + kaToken + `"}`,
	`{"SourceMetadata":{"Data":{"Docker":{"image":"acme/app:1.2","layer":"sha256:abc","file":"/app/.env"}}},"SourceName":"trufflehog - docker","DetectorName":"Kubeadapt","RawV2":"` + kaToken + `"}`,
}, "\n")

// gitleaksReport is a `gitleaks detect --report-format json` report.
const gitleaksReport = `[
 {
  "Description": "GitHub Personal Access Token",
  "StartLine": 14, "EndLine": 14, "StartColumn": 12, "EndColumn": 51,
  "Match": "token = ` + ghSecret + `",
  "Secret": "` + ghSecret + `",
  "File": "deploy/values.yaml", "SymlinkFile": "",
  "Commit": "3a2f1e0c9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f",
  "Link": "https://github.com/acme/infra/blob/3a2f1e0c9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f/deploy/values.yaml#L14",
  "Entropy": 4.9, "Author": "Ana", "Email": "ana@example.com", "Date": "2024-05-01T10:00:00Z",
  "Message": "add values", "Tags": [], "RuleID": "github-pat",
  "Fingerprint": "3a2f1e0c9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f:deploy/values.yaml:github-pat:14"
 },
 {
  "Description": "Kubeadapt API key", "StartLine": 3, "EndLine": 3, "StartColumn": 1, "EndColumn": 40,
  "Match": "KUBEADAPT_KEY=` + kaToken + `", "Secret": "` + kaToken + `",
  "File": ".env", "SymlinkFile": "", "Commit": "", "Entropy": 4.5, "Author": "", "Email": "", "Date": "",
  "Message": "", "Tags": [], "RuleID": "kubeadapt-api-key", "Fingerprint": ".env:kubeadapt-api-key:3"
 }
]
`

func TestParseTrufflehog(t *testing.T) {
	reps, err := Parse("trufflehog", strings.NewReader(trufflehogOutput))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ url, fp, typ string }{
		{"https://github.com/trufflesecurity/test_keys@fbc14303ffbf8fb1c2c1914e8dda7d0121633aca:keys:4", rotator.Fingerprint(awsID), "AWS"},
		{"https://github.com/acme/billing/blob/77b2a3e/.env#L3", rotator.Fingerprint(kaToken), "Kubeadapt"},
		{"/srv/app/config.yaml:12", rotator.Fingerprint(kaToken), "Kubeadapt"},
		{"acme/app:1.2:/app/.env", rotator.Fingerprint(kaToken), "Kubeadapt"},
	}
	if len(reps) != len(want) {
		t.Fatalf("%d reports, want %d: %+v", len(reps), len(want), reps)
	}
	for i, w := range want {
		r := reps[i]
		if r.URL != w.url || r.Fingerprint != w.fp || r.Type != w.typ || r.Source != "trufflehog" || r.Via != Via ||
			!strings.HasPrefix(r.ID, "trufflehog:") || r.ReceivedAt.IsZero() || r.KeyHint != "" {
			t.Errorf("report %d = %+v, want %+v", i, r, w)
		}
	}
	again, _ := Parse("TruffleHog", strings.NewReader(trufflehogOutput))
	for i := range reps {
		if again[i].ID != reps[i].ID {
			t.Fatalf("IDs differ between two parses of the same file")
		}
	}
	assertNoSecret(t, reps)
}

func TestParseGitleaks(t *testing.T) {
	reps, err := Parse("gitleaks", strings.NewReader(gitleaksReport))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ url, fp, typ string }{
		{"https://github.com/acme/infra/blob/3a2f1e0c9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f/deploy/values.yaml#L14", rotator.Fingerprint(ghSecret), "github-pat"},
		{".env:3", rotator.Fingerprint(kaToken), "kubeadapt-api-key"},
	}
	if len(reps) != len(want) {
		t.Fatalf("%d reports: %+v", len(reps), reps)
	}
	for i, w := range want {
		if r := reps[i]; r.URL != w.url || r.Fingerprint != w.fp || r.Type != w.typ || r.Source != "gitleaks" || !strings.HasPrefix(r.ID, "gitleaks:") {
			t.Errorf("report %d = %+v, want %+v", i, r, w)
		}
	}
	if reps, err := Parse("gitleaks", strings.NewReader("[]\n")); err != nil || len(reps) != 0 {
		t.Fatalf("empty report: %v %v", reps, err)
	}
	assertNoSecret(t, reps)
}

func TestParseErrors(t *testing.T) {
	tests := map[string]struct {
		format, in, want string
	}{
		"unknown format":            {format: "detect-secrets", in: "{}", want: `unknown format "detect-secrets"`},
		"trufflehog plain text":     {format: "trufflehog", in: "Found verified result 🐷🔑\nRaw result: " + kaToken, want: "result 1: not JSON"},
		"trufflehog array":          {format: "trufflehog", in: `["` + kaToken + `"]`, want: "not a JSON object"},
		"trufflehog without secret": {format: "trufflehog", in: `{"DetectorName":"Kubeadapt","SourceMetadata":{"Data":{"Filesystem":{"file":"a","line":1}}}}`, want: "result 1 (a:1): no Raw or RawV2"},
		"trufflehog wrong types":    {format: "trufflehog", in: `{"DetectorName":"x","Raw":["` + kaToken + `"]}`, want: "unexpected field types"},
		"trufflehog bad second":     {format: "trufflehog", in: `{"DetectorName":"x","Raw":"` + kaToken + `"}` + "\n{", want: "result 2: not JSON"},
		"gitleaks object":           {format: "gitleaks", in: `{"Secret":"` + kaToken + `"}`, want: "must be a JSON array"},
		"gitleaks redacted":         {format: "gitleaks", in: `[{"Secret":"REDACTED","File":".env","StartLine":3}]`, want: "finding 1 (.env:3): the secret is redacted"},
		"gitleaks partly redacted":  {format: "gitleaks", in: `[{"Secret":"ka_live_...","File":".env","StartLine":3}]`, want: "redacted"},
		"gitleaks without secret":   {format: "gitleaks", in: `[{"RuleID":"x"}]`, want: "finding 1: no Secret"},
		"gitleaks wrong types":      {format: "gitleaks", in: `[{"Secret":"` + kaToken + `","StartLine":"` + kaToken + `"}]`, want: "finding 1: not a finding object"},
		"gitleaks truncated":        {format: "gitleaks", in: `[{"Secret":"` + kaToken + `"}`, want: "not closed"},
		"gitleaks trailing":         {format: "gitleaks", in: `[] ` + kaToken, want: "trailing data"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(tc.format, strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), kaToken) {
				t.Fatalf("error quotes the secret: %v", err)
			}
		})
	}
}

func TestLocationQuotingTheSecret(t *testing.T) {
	in := `[{"Secret":"` + kaToken + `","Link":"https://logs.example.com/?q=` + kaToken + `","RuleID":"r"}]`
	reps, err := Parse("gitleaks", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if reps[0].URL != "https://logs.example.com/?q=<redacted>" {
		t.Fatalf("URL %q", reps[0].URL)
	}
}

func assertNoSecret(t *testing.T, reps []rotator.ExposureReport) {
	t.Helper()
	for _, r := range reps {
		for _, s := range []string{kaToken, awsID + "wJalr", ghSecret} {
			if strings.Contains(r.ID+r.URL+r.Type+r.Source+r.KeyHint, s) {
				t.Fatalf("report carries a secret: %+v", r)
			}
		}
	}
}

func FuzzParseTrufflehog(f *testing.F) {
	for _, line := range strings.Split(trufflehogOutput, "\n") {
		f.Add([]byte(line))
	}
	f.Add([]byte(trufflehogOutput))
	f.Add([]byte(`{"SourceMetadata":{"Data":{"Git":{"line":"-1"}}},"Raw":"x"}`))
	f.Add([]byte(`{"SourceMetadata":{"Data":null},"RawV2":"x"} 1`))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkParse(t, FormatTrufflehog, b)
	})
}

func FuzzParseGitleaks(f *testing.F) {
	f.Add([]byte(gitleaksReport))
	f.Add([]byte(`[]`))
	f.Add([]byte(`[{"Secret":"s","Link":"s"}]`))
	f.Add([]byte(`[{"Secret":"REDACTED"}]`))
	f.Add([]byte(`[1,2`))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkParse(t, FormatGitleaks, b)
	})
}

// checkParse: never a panic; reports are well formed and unique.
func checkParse(t *testing.T, format string, b []byte) {
	reps, err := Parse(format, strings.NewReader(string(b)))
	if err != nil {
		return
	}
	ids := map[string]bool{}
	for _, r := range reps {
		if len(r.Fingerprint) != 64 || r.Source != format || r.Via != Via || ids[r.ID] {
			t.Fatalf("report %+v", r)
		}
		ids[r.ID] = true
	}
}

// TestLocationQuotingTheSecretEncoded: a link that carries the secret
// URL-encoded or base64-encoded loses it too.
func TestLocationQuotingTheSecretEncoded(t *testing.T) {
	secret := "tok+en/with=specials_0123456789abcdef"
	link := "https://logs.example.com/search?q=" + url.QueryEscape(secret) + "&b=" + base64.StdEncoding.EncodeToString([]byte(secret))
	in, _ := json.Marshal([]map[string]string{{"Secret": secret, "Link": link, "RuleID": "r"}})
	reps, err := Parse("gitleaks", bytes.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	for _, form := range []string{secret, url.QueryEscape(secret), base64.StdEncoding.EncodeToString([]byte(secret))} {
		if strings.Contains(reps[0].URL, form) {
			t.Fatalf("URL %q still carries %q", reps[0].URL, form)
		}
	}
	if !strings.HasPrefix(reps[0].URL, "https://logs.example.com/search?q=") {
		t.Fatalf("URL %q lost more than the secret", reps[0].URL)
	}
}
