package config

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// ParseDuration extends time.ParseDuration with days and weeks: "90d",
// "2w", "1d12h". A bare "0" is zero.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	if s == "0" {
		return 0, nil
	}
	var total time.Duration
	rest := s
	for rest != "" {
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		if i == 0 || i == len(rest) {
			break
		}
		unit := rest[i]
		if unit != 'd' && unit != 'w' {
			break
		}
		n, err := strconv.ParseFloat(rest[:i], 64)
		if err != nil {
			return 0, errors.New("invalid duration (use e.g. 90d, 2w, 36h, 30m, 10s)")
		}
		mult := 24 * time.Hour
		if unit == 'w' {
			mult = 7 * 24 * time.Hour
		}
		total += time.Duration(n * float64(mult))
		rest = rest[i+1:]
	}
	if rest != "" {
		d, err := time.ParseDuration(rest)
		if err != nil {
			// The value is not quoted: it may be a secret in the wrong place.
			return 0, errors.New("invalid duration (use e.g. 90d, 2w, 36h, 30m, 10s)")
		}
		total += d
	}
	if total < 0 {
		return 0, errors.New("negative duration")
	}
	return total, nil
}

// durationHook decodes strings such as "90d" into time.Duration.
func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeFor[time.Duration]() {
		return data, nil
	}
	switch v := data.(type) {
	case string:
		return ParseDuration(v)
	case int:
		if v == 0 {
			return time.Duration(0), nil
		}
	case int64:
		if v == 0 {
			return time.Duration(0), nil
		}
	case float64:
		if v == 0 {
			return time.Duration(0), nil
		}
	case time.Duration:
		return v, nil
	}
	return nil, fmt.Errorf("duration must be a string with a unit such as \"90d\" or \"30s\", got %v", data)
}

func sprintf(format string, args ...any) string {
	if len(args) == 0 {
		return format
	}
	return fmt.Sprintf(format, args...)
}
