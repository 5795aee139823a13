package config

import (
	"fmt"
	"strings"
	"time"
)

// ParsedWindow is a Window with its fields parsed.
type ParsedWindow struct {
	Days       []time.Weekday
	Start, End time.Duration
	Location   *time.Location
}

var weekdays = map[string]time.Weekday{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}

// ParseWindow parses days ("mon-fri", "sat"), times ("09:00") and the zone.
func ParseWindow(w Window) (ParsedWindow, error) {
	var pw ParsedWindow
	for _, d := range w.Days {
		d = strings.ToLower(strings.TrimSpace(d))
		from, to, isRange := strings.Cut(d, "-")
		a, ok1 := weekdays[from]
		b, ok2 := weekdays[to]
		if !ok1 || isRange && !ok2 {
			return pw, fmt.Errorf("days: %q is not a weekday (mon … sun) or range (mon-fri)", d)
		}
		if !isRange {
			b = a
		}
		for x := a; ; x = (x + 1) % 7 {
			pw.Days = append(pw.Days, x)
			if x == b {
				break
			}
		}
	}
	var err error
	if pw.Start, err = parseClock(w.Start); err != nil {
		return pw, fmt.Errorf("start: %v", err)
	}
	if pw.End, err = parseClock(w.End); err != nil {
		return pw, fmt.Errorf("end: %v", err)
	}
	if pw.Start == pw.End {
		return pw, fmt.Errorf("start and end are equal (%s)", w.Start)
	}
	pw.Location = time.UTC
	if w.TZ != "" {
		if pw.Location, err = time.LoadLocation(w.TZ); err != nil {
			return pw, fmt.Errorf("tz: unknown time zone %q", w.TZ)
		}
	}
	return pw, nil
}

func parseClock(s string) (time.Duration, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a time of day like 09:00", s)
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}
