package random

import (
	"bytes"
	"crypto/rand"
	"strings"
	"testing"
)

func TestParseTemplateErrors(t *testing.T) {
	tests := map[string]struct {
		format  string
		wantErr string
	}{
		"empty":              {format: "", wantErr: "at least one placeholder"},
		"literal only":       {format: "ka_live_static", wantErr: "at least one placeholder"},
		"unknown class":      {format: "x_{base64:10}", wantErr: `unknown class "base64"`},
		"zero length":        {format: "{hex:0}", wantErr: "out of range 1..512"},
		"too long":           {format: "{hex:513}", wantErr: "out of range 1..512"},
		"negative":           {format: "{hex:-3}", wantErr: "out of range"},
		"not a number":       {format: "{hex:ten}", wantErr: "out of range"},
		"missing length":     {format: "{hex}", wantErr: "want {class:N}"},
		"unclosed":           {format: "ka_{base62:32", wantErr: "unclosed placeholder"},
		"second one invalid": {format: "{hex:8}-{alnum:600}", wantErr: "{alnum:600}"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := parseTemplate(tc.format)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("parseTemplate(%q) err = %v, want %q", tc.format, err, tc.wantErr)
			}
			cfgErr := Config{Format: tc.format, Ledger: "x.json"}.Validate()
			if cfgErr == nil || !strings.HasPrefix(cfgErr.Error(), "format: ") {
				t.Fatalf("Validate err = %v, want a format: prefix", cfgErr)
			}
		})
	}
}

func TestRender(t *testing.T) {
	tests := map[string]struct {
		format   string
		prefix   string
		suffix   string
		alphabet string
		n        int
	}{
		"default":       {format: DefaultFormat, prefix: "ka_live_", alphabet: classBase62, n: 32},
		"hex":           {format: "{hex:64}", alphabet: classHex, n: 64},
		"alnum suffix":  {format: "tok-{alnum:20}-end", prefix: "tok-", suffix: "-end", alphabet: classAlnum, n: 20},
		"max length":    {format: "{base62:512}", alphabet: classBase62, n: 512},
		"escaped brace": {format: "{{x}_{hex:4}", prefix: "{x}_", alphabet: classHex, n: 4},
		"min length":    {format: "k{hex:1}", prefix: "k", alphabet: classHex, n: 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tmpl, err := parseTemplate(tc.format)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for range 50 {
				v, err := tmpl.render(rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.HasPrefix(v, tc.prefix) || !strings.HasSuffix(v, tc.suffix) {
					t.Fatalf("%q lacks prefix %q / suffix %q", v, tc.prefix, tc.suffix)
				}
				body := strings.TrimSuffix(strings.TrimPrefix(v, tc.prefix), tc.suffix)
				if len(body) != tc.n {
					t.Fatalf("random part %q has length %d, want %d", body, len(body), tc.n)
				}
				for _, c := range body {
					if !strings.ContainsRune(tc.alphabet, c) {
						t.Fatalf("%q: character %q outside its class", v, c)
					}
				}
				seen[v] = true
			}
			if tc.n >= 16 && len(seen) != 50 {
				t.Fatalf("only %d distinct values in 50 renderings", len(seen))
			}
		})
	}
}

// TestRenderDistribution draws many characters of each class and checks
// that every character appears and none is far from its expected share —
// a modulo bias (256 % 62 = 8) would over-represent the first 8 base62
// characters by about 25%.
func TestRenderDistribution(t *testing.T) {
	for class, alphabet := range classes {
		t.Run(class, func(t *testing.T) {
			const draws = 200_000
			chars, err := randomChars(rand.Reader, alphabet, draws)
			if err != nil {
				t.Fatal(err)
			}
			counts := map[byte]int{}
			for _, c := range chars {
				counts[c]++
			}
			if len(counts) != len(alphabet) {
				t.Fatalf("%d distinct characters, want %d", len(counts), len(alphabet))
			}
			want := float64(draws) / float64(len(alphabet))
			for c, n := range counts {
				if dev := (float64(n) - want) / want; dev > 0.1 || dev < -0.1 {
					t.Errorf("character %q drawn %d times, expected about %.0f", c, n, want)
				}
			}
		})
	}
}

// TestRandomCharsRejectsBiasedBytes feeds bytes at and above the rejection
// limit and checks they are skipped, not folded onto the first characters.
func TestRandomCharsRejectsBiasedBytes(t *testing.T) {
	// 248..255 must be rejected for base62; 61 maps to 'z', 0 to '0'.
	src := bytes.NewReader(append(bytes.Repeat([]byte{248, 255, 61, 0}, 4), make([]byte, 64)...))
	got, err := randomChars(src, classBase62, 3)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "z0z" {
		t.Fatalf("got %q, want %q", got, "z0z")
	}
}

func TestEntropyBits(t *testing.T) {
	tmpl, err := parseTemplate("{hex:32}")
	if err != nil {
		t.Fatal(err)
	}
	if got := tmpl.entropyBits(); got != 128 {
		t.Fatalf("entropy = %v, want 128", got)
	}
}
