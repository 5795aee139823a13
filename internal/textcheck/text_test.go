package textcheck

import (
	"strings"
	"testing"
)

func TestCheckText(t *testing.T) {
	tests := map[string]struct {
		field Field
		want  string // substring of the error; "" = accepted
	}{
		"plain":              {field: Field{Name: "url", Value: "https://example.com/a b?x=ü", Max: 100}},
		"empty":              {field: Field{Name: "url"}},
		"escape sequence":    {field: Field{Name: "source", Value: "gh\x1b[2K\r\x1b[32mall good"}, want: "source: must be printable text"},
		"OSC-8 hyperlink":    {field: Field{Name: "url", Value: "\x1b]8;;https://evil.example\x1b\\x\x1b]8;;\x1b\\"}, want: "url: must be printable text"},
		"newline":            {field: Field{Name: "type", Value: "a\nb"}, want: "type: must be printable text"},
		"tab":                {field: Field{Name: "type", Value: "a\tb"}, want: "type: must be printable text"},
		"DEL":                {field: Field{Name: "type", Value: "a\x7f"}, want: "type: must be printable text"},
		"C1 CSI":             {field: Field{Name: "type", Value: "a\u009b2K"}, want: "type: must be printable text"},
		"bidi override":      {field: Field{Name: "url", Value: "https://x/\u202egnp.exe"}, want: "url: must be printable text"},
		"invalid UTF-8":      {field: Field{Name: "url", Value: "a\xffb"}, want: "url: must be printable text"},
		"too long":           {field: Field{Name: "key", Value: strings.Repeat("k", 11), Max: 10}, want: "key: longer than 10 bytes"},
		"long without bound": {field: Field{Name: "email", Value: strings.Repeat("k", 1000)}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := CheckText(Field{Name: "ok", Value: "fine"}, tc.field)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}

func TestCheckTextReportsEveryField(t *testing.T) {
	err := CheckText(Field{Name: "source", Value: "\x1b"}, Field{Name: "url", Value: "\r"})
	if err == nil || !strings.Contains(err.Error(), "source:") || !strings.Contains(err.Error(), "url:") {
		t.Fatalf("err %v, want both fields named", err)
	}
}

func TestEscape(t *testing.T) {
	tests := map[string]struct{ in, want string }{
		"printable unchanged": {"repo@abc:dir/ü.txt:3", "repo@abc:dir/ü.txt:3"},
		"escape sequence":     {"f\x1b[2K\rok", `f\x1b[2K\rok`},
		"bidi override":       {"a\u202eb", `a\u202eb`},
		"invalid UTF-8":       {"a\xffb", "a\ufffdb"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := Escape(tc.in)
			if got != tc.want || !Printable(got) {
				t.Fatalf("Escape(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
