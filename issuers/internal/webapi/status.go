package webapi

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Statuses is a set of HTTP status codes as configured in YAML: each entry
// is a code (201 or "201"), a class ("5xx") or a range ("500-599"); a
// string may hold several entries separated by commas. It is a []any so
// that a YAML list mixing numbers and strings decodes under any decoder
// settings; Parse checks it.
type Statuses []any

// StatusSet is a parsed Statuses.
type StatusSet struct {
	ranges [][2]int // inclusive
	text   []string
}

// Parse checks s; field names the configuration field for the error.
func (s Statuses) Parse(field string) (StatusSet, error) {
	var set StatusSet
	for _, e := range s {
		var parts []string
		switch v := e.(type) {
		case int:
			parts = []string{strconv.Itoa(v)}
		case int64:
			parts = []string{strconv.FormatInt(v, 10)}
		case uint64:
			parts = []string{strconv.FormatUint(v, 10)}
		case float64:
			if v != float64(int(v)) {
				return StatusSet{}, fmt.Errorf("%s: %v is not a status code", field, v)
			}
			parts = []string{strconv.Itoa(int(v))}
		case string:
			parts = strings.Split(v, ",")
		default:
			return StatusSet{}, fmt.Errorf("%s: %v is not a status code", field, e)
		}
		for _, p := range parts {
			p = strings.TrimSpace(p)
			lo, hi, err := parseStatus(p)
			if err != nil {
				return StatusSet{}, fmt.Errorf("%s: %w", field, err)
			}
			set.ranges = append(set.ranges, [2]int{lo, hi})
			set.text = append(set.text, strings.ToLower(p))
		}
	}
	return set, nil
}

// MustParse parses statuses known to be valid (defaults); it panics
// otherwise.
func MustParse(s ...any) StatusSet {
	set, err := Statuses(s).Parse("statuses")
	if err != nil {
		panic(err)
	}
	return set
}

func parseStatus(p string) (lo, hi int, err error) {
	bad := fmt.Errorf("%q is not a status code, class (5xx) or range (500-599)", p)
	switch {
	case len(p) == 3 && (p[1:] == "xx" || p[1:] == "XX"):
		d := int(p[0] - '0')
		if d < 1 || d > 5 {
			return 0, 0, bad
		}
		return d * 100, d*100 + 99, nil
	case strings.Contains(p, "-"):
		a, b, _ := strings.Cut(p, "-")
		lo, err1 := strconv.Atoi(strings.TrimSpace(a))
		hi, err2 := strconv.Atoi(strings.TrimSpace(b))
		if err1 != nil || err2 != nil || !validCode(lo) || !validCode(hi) || lo > hi {
			return 0, 0, bad
		}
		return lo, hi, nil
	}
	c, err := strconv.Atoi(p)
	if err != nil || !validCode(c) {
		return 0, 0, bad
	}
	return c, c, nil
}

func validCode(c int) bool { return c >= 100 && c <= 599 }

// Has reports whether code is in the set.
func (s StatusSet) Has(code int) bool {
	return slices.ContainsFunc(s.ranges, func(r [2]int) bool { return code >= r[0] && code <= r[1] })
}

// IsEmpty reports whether the set holds no code.
func (s StatusSet) IsEmpty() bool { return len(s.ranges) == 0 }

// Or returns s, or def when s is empty.
func (s StatusSet) Or(def StatusSet) StatusSet {
	if s.IsEmpty() {
		return def
	}
	return s
}

// String lists the set as configured: "429, 5xx".
func (s StatusSet) String() string { return strings.Join(s.text, ", ") }
