package config

import (
	"errors"
	"slices"
	"testing"
)

// The paths of decoding errors, made only when an error names them, are
// those join and [i] make at every level: fields, list items, map keys
// (an empty key names the map itself, a key starting with "[" follows it).
func TestDecodeErrorPaths(t *testing.T) {
	var out struct {
		M map[string]int `koanf:"m"`
		L [][]int        `koanf:"l"`
		S struct {
			X int `koanf:"x"`
		} `koanf:"s"`
	}
	raw := map[string]any{
		"m": map[string]any{"": "a", "[x": "b", "k": "c"},
		"l": []any{[]any{1, "z"}},
		"s": map[string]any{"x": "q", "y": 1},
	}
	for base, want := range map[string][]string{
		"p": {"p.l[0][1]", "p.m", "p.m.k", "p.m[x", "p.s.x", "p.s.y"},
		"":  {"l[0][1]", "m", "m.k", "m[x", "s.x", "s.y"},
	} {
		var errs Errors
		if err := Decode(raw, &out, base); !errors.As(err, &errs) {
			t.Fatalf("%q: %v", base, err)
		}
		var got []string
		for _, e := range errs {
			got = append(got, e.Path)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("base %q: paths %q, want %q", base, got, want)
		}
	}
}
