package scanners

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// trufflehogResult is the part of one `trufflehog --json` line rekey reads.
// Raw is the secret as the detector found it; RawV2, when set, pairs it
// with its identifier (an AWS key id and secret, say) and is used only when
// Raw is empty. Raw is read as a string, as TruffleHog v3 prints it.
type trufflehogResult struct {
	SourceMetadata *struct {
		Data map[string]json.RawMessage `json:"Data"`
	} `json:"SourceMetadata"`
	SourceName   string `json:"SourceName"`
	DetectorName string `json:"DetectorName"`
	Raw          string `json:"Raw"`
	RawV2        string `json:"RawV2"`
}

// trufflehogPlace is the location part of any source's metadata (Git,
// Github, Gitlab, Filesystem, S3, Docker…): each uses some of these names.
type trufflehogPlace struct {
	Link       string          `json:"link"`
	Repository string          `json:"repository"`
	Commit     string          `json:"commit"`
	File       string          `json:"file"`
	Line       json.RawMessage `json:"line"`
	Image      string          `json:"image"`
	Bucket     string          `json:"bucket"`
}

// parseTrufflehog reads JSON results, one per line (any whitespace between
// them does). Objects that are not findings — TruffleHog's own JSON log
// lines, when stderr was captured too — are skipped.
func parseTrufflehog(r io.Reader) ([]finding, error) {
	dec := json.NewDecoder(r)
	var out []finding
	for n := 1; ; n++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("trufflehog: result %d: not JSON (expected the output of trufflehog --json)", n)
		}
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 || raw[0] != '{' {
			return nil, fmt.Errorf("trufflehog: result %d: not a JSON object", n)
		}
		var res trufflehogResult
		if err := json.Unmarshal(raw, &res); err != nil {
			return nil, fmt.Errorf("trufflehog: result %d: unexpected field types", n)
		}
		if res.DetectorName == "" && res.Raw == "" && res.RawV2 == "" && res.SourceMetadata == nil {
			continue // a log line
		}
		loc := res.location()
		secret := res.Raw
		if secret == "" {
			secret = res.RawV2
		}
		if secret == "" {
			return nil, fmt.Errorf("trufflehog: %s: no Raw or RawV2 secret", describe("result", n, loc))
		}
		out = append(out, finding{secret: secret, kind: res.DetectorName, location: loc})
	}
}

// location picks the best place from the source metadata: its link if it
// has one, else repository (or image, or bucket), commit, file and line.
func (res trufflehogResult) location() string {
	if res.SourceMetadata == nil || len(res.SourceMetadata.Data) == 0 {
		return res.SourceName
	}
	kinds := make([]string, 0, len(res.SourceMetadata.Data))
	for k := range res.SourceMetadata.Data {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds) // one kind in practice; deterministic otherwise
	for _, k := range kinds {
		var p trufflehogPlace
		if json.Unmarshal(res.SourceMetadata.Data[k], &p) != nil {
			continue
		}
		if p.Link != "" {
			return p.Link
		}
		repo := firstNonEmpty(p.Repository, p.Image, p.Bucket)
		if loc := place(repo, p.Commit, p.File, lineOf(p.Line)); loc != "" {
			return loc
		}
	}
	return res.SourceName
}

// lineOf reads a line number sent as a number or a string.
func lineOf(raw json.RawMessage) int64 {
	s := strings.Trim(string(raw), `"`)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
