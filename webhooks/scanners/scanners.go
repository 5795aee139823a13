// Package scanners turns secret scanners' reports into exposure reports for
// `rekey report --format trufflehog|gitleaks FILE`: TruffleHog v3's JSON
// lines (`trufflehog … --json`) and Gitleaks' JSON report array
// (`gitleaks … --report-format json`). Every found secret is hashed at once;
// the reports carry its fingerprint only, and errors name a finding by its
// position and location, never by its value.
package scanners

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/rekeyhq/rekey/internal/redact"
	"github.com/rekeyhq/rekey/internal/textcheck"
	"github.com/rekeyhq/rekey/rotator"
)

// Formats Parse understands.
const (
	FormatTrufflehog = "trufflehog"
	FormatGitleaks   = "gitleaks"
)

// Formats lists the formats, for the CLI's help.
var Formats = []string{FormatTrufflehog, FormatGitleaks}

// Via is the ExposureReport.Via of every report.
const Via = "cli"

// finding is one secret a scanner found, before hashing.
type finding struct {
	secret   string // dropped once hashed
	kind     string // detector or rule
	location string // where, for the report's URL and ID
}

// Parse reads a scanner's report and returns one exposure report per
// distinct secret and location, in file order. Source is the scanner's
// name, URL its best location (a link when the scanner gives one, else
// repository, commit, file and line), Type the detector or rule, and ID a
// hash of source, location and fingerprint, so that reporting the same file
// twice de-duplicates in the engine.
func Parse(format string, r io.Reader) ([]rotator.ExposureReport, error) {
	var (
		fs  []finding
		err error
	)
	switch strings.ToLower(format) {
	case FormatTrufflehog:
		fs, err = parseTrufflehog(r)
	case FormatGitleaks:
		fs, err = parseGitleaks(r)
	default:
		return nil, fmt.Errorf("scanners: unknown format %q (want %s)", format, strings.Join(Formats, " or "))
	}
	if err != nil {
		return nil, err
	}
	source := strings.ToLower(format)
	now := time.Now().UTC()
	out := make([]rotator.ExposureReport, 0, len(fs))
	seen := map[string]bool{}
	for _, f := range fs {
		fp := rotator.Fingerprint(f.secret)
		// Escaped, not refused: a file name in a scanned repository is
		// anyone's to choose, and must neither reach a terminal raw nor
		// let its author suppress the report.
		loc := shown(f.location, f.secret)
		id := reportID(source, loc, fp)
		if seen[id] {
			continue
		}
		seen[id] = true
		out = append(out, rotator.ExposureReport{
			ID:          id,
			Via:         Via,
			Source:      source,
			URL:         loc,
			Fingerprint: fp,
			Type:        shown(f.kind, f.secret),
			ReceivedAt:  now,
		})
	}
	return out, nil
}

// shown is s as a report may carry it: the secret redacted, what a
// terminal would interpret escaped, and the secret redacted again from
// the escaped text (escaping "\x11" before "0000000" spells \x110000000,
// which holds a secret "10000000").
func shown(s, secret string) string {
	return redact.Token(textcheck.Escape(redact.Token(s, secret)), secret)
}

// reportID is source + ":" + hex SHA-256 of source, location and
// fingerprint, NUL-separated.
func reportID(source, location, fingerprint string) string {
	h := sha256.New()
	for _, s := range []string{source, location, fingerprint} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return source + ":" + hex.EncodeToString(h.Sum(nil))
}

// place formats a location from its parts, leaving out the empty ones:
// "repository@commit:file:line".
func place(repository, commit, file string, line int64) string {
	var b strings.Builder
	b.WriteString(repository)
	if commit != "" {
		if b.Len() > 0 {
			b.WriteByte('@')
		}
		b.WriteString(commit)
	}
	if file != "" {
		if b.Len() > 0 {
			b.WriteByte(':')
		}
		b.WriteString(file)
	}
	if line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.FormatInt(line, 10))
	}
	return b.String()
}

// describe names a finding in an error: its position, and its location
// when known.
func describe(what string, n int, location string) string {
	if location == "" {
		return what + " " + strconv.Itoa(n)
	}
	return what + " " + strconv.Itoa(n) + " (" + textcheck.Escape(location) + ")"
}
