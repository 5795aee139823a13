package scanners

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzReportsCarryNoSecret follows a finding past the parser: whatever the
// secret and whatever location quotes it (raw, URL-encoded, base64), the
// reports handed to the engine — the id, the url and the type, which are
// stored, audited and notified — never carry it, and their number is
// bounded by the findings.
func FuzzReportsCarryNoSecret(f *testing.F) {
	f.Add("ka_live_LEAKEDleakedLEAKEDleaked012345", "https://logs.example.com/?q=", "generic-api-key", byte(0))
	f.Add("tok+en/with=specials", "https://ci.example/job/", "rule", byte(1))
	f.Add("AKIAYVP4CIPPERUVIFXG", "s3://bucket/key", "aws", byte(2))
	f.Fuzz(func(t *testing.T, secret, where, kind string, how byte) {
		// JSON carries only valid UTF-8 (invalid bytes become U+FFFD, so
		// the scanner's secret would not be the one quoted here).
		if !utf8.ValidString(secret) || !utf8.ValidString(where) || !utf8.ValidString(kind) || len(secret) < 8 || strings.Contains(secret, "REDACTED") || strings.HasSuffix(secret, "...") || strings.TrimSpace(secret) != secret {
			return
		}
		quoted := []string{secret, url.QueryEscape(secret), base64.StdEncoding.EncodeToString([]byte(secret))}[int(how)%3]
		in, err := json.Marshal([]map[string]any{
			{"Secret": secret, "Link": where + quoted, "RuleID": kind + quoted, "File": "a", "StartLine": 1},
			{"Secret": secret, "File": where + quoted, "RuleID": kind, "StartLine": 2, "Commit": "c"},
		})
		if err != nil {
			return
		}
		reps, err := Parse(FormatGitleaks, strings.NewReader(string(in)))
		if err != nil {
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error quotes the secret: %v", err)
			}
			return
		}
		if len(reps) > 2 {
			t.Fatalf("%d reports from 2 findings", len(reps))
		}
		for _, r := range reps {
			for _, field := range []string{r.ID, r.URL, r.Type, r.Source} {
				for _, form := range []string{secret, url.QueryEscape(secret), base64.StdEncoding.EncodeToString([]byte(secret))} {
					if strings.Contains(field, form) {
						t.Fatalf("report %+v carries the secret as %q", r, form)
					}
				}
			}
		}
	})
}
