package scanners

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// gitleaksFinding is the part of a Gitleaks JSON report entry rekey reads.
type gitleaksFinding struct {
	RuleID    string `json:"RuleID"`
	Secret    string `json:"Secret"`
	File      string `json:"File"`
	StartLine int64  `json:"StartLine"`
	Commit    string `json:"Commit"`
	Link      string `json:"Link"`
}

// parseGitleaks reads the report: a JSON array of findings.
func parseGitleaks(r io.Reader) ([]finding, error) {
	dec := json.NewDecoder(r)
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('[') {
		return nil, errors.New("gitleaks: the report must be a JSON array (gitleaks --report-format json)")
	}
	var out []finding
	for n := 1; dec.More(); n++ {
		var f gitleaksFinding
		if err := dec.Decode(&f); err != nil {
			return nil, fmt.Errorf("gitleaks: finding %d: not a finding object", n)
		}
		loc := f.Link
		if loc == "" {
			loc = place("", f.Commit, f.File, f.StartLine)
		}
		switch {
		case f.Secret == "":
			return nil, fmt.Errorf("gitleaks: %s: no Secret", describe("finding", n, loc))
		case f.Secret == "REDACTED" || strings.HasSuffix(f.Secret, "..."):
			return nil, fmt.Errorf("gitleaks: %s: the secret is redacted; run gitleaks without --redact so rekey can fingerprint it", describe("finding", n, loc))
		}
		out = append(out, finding{secret: f.Secret, kind: f.RuleID, location: loc})
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim(']') {
		return nil, errors.New("gitleaks: the report's array is not closed")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("gitleaks: trailing data after the report's array")
	}
	return out, nil
}
