package sqlstore

import (
	"sort"
	"testing"
	"time"
)

func TestRebind(t *testing.T) {
	tests := map[string]struct {
		query, want string
	}{
		"none":               {`SELECT 1`, `SELECT 1`},
		"several":            {`UPDATE t SET a = ?, b = ? WHERE id = ?`, `UPDATE t SET a = $1, b = $2 WHERE id = $3`},
		"ten and more":       {`VALUES (?,?,?,?,?,?,?,?,?,?,?)`, `VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)`},
		"in a literal":       {`SELECT '?' , ? WHERE a = 'it''s ?'`, `SELECT '?' , $1 WHERE a = 'it''s ?'`},
		"empty literal":      {`WHERE hold = '' AND x <= ?`, `WHERE hold = '' AND x <= $1`},
		"quoted identifier":  {`SELECT "a?b" FROM t WHERE c = ?`, `SELECT "a?b" FROM t WHERE c = $1`},
		"comment":            {"SELECT ? -- why?\nFROM t WHERE a = ?", "SELECT $1 -- why?\nFROM t WHERE a = $2"},
		"unterminated quote": {`SELECT ? WHERE a = '?`, `SELECT $1 WHERE a = '?`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := (Dialect{NumberedPlaceholders: true}).Rebind(tc.query); got != tc.want {
				t.Errorf("Rebind(%q) = %q, want %q", tc.query, got, tc.want)
			}
			if got := (Dialect{}).Rebind(tc.query); got != tc.query {
				t.Errorf("a ? dialect rewrote %q to %q", tc.query, got)
			}
		})
	}
}

func TestTimeTextRoundTripsAndSorts(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	times := []time.Time{
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Unix(0, 0),
		time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC),
		time.Date(2025, 3, 1, 12, 0, 0, 5, time.UTC),
		time.Date(2025, 3, 1, 12, 0, 0, 500000000, time.UTC),
		time.Date(2025, 3, 1, 13, 0, 1, 0, paris),    // 12:00:01 UTC
		time.Date(2262, 4, 12, 0, 0, 0, 0, time.UTC), // past the end of int64 nanoseconds
		time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC),  // the engine's far future
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
	}
	var texts []string
	for _, tm := range times {
		text := TimeText(tm)
		var back time.Time
		if err := (timeCol{&back}).Scan(text); err != nil {
			t.Fatalf("scan %q: %v", text, err)
		}
		if !back.Equal(tm) {
			t.Errorf("%s came back as %s (via %q)", tm, back, text)
		}
		if err := checkTime("t", tm); err != nil {
			t.Errorf("checkTime(%s): %v", tm, err)
		}
		texts = append(texts, text)
	}
	if !sort.StringsAreSorted(texts) {
		t.Errorf("text order is not time order: %q", texts)
	}
	if TimeText(time.Time{}) != "" {
		t.Errorf("the zero time is stored as %q, want empty", TimeText(time.Time{}))
	}
	var zero time.Time
	if err := (timeCol{&zero}).Scan(""); err != nil || !zero.IsZero() {
		t.Errorf("empty text scanned as %s, %v", zero, err)
	}
	if err := checkTime("t", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)); err == nil {
		t.Error("checkTime accepted the year 10000")
	}
}
