package main

import (
	"bytes"
	"encoding/json"
	"testing"
)

// printRaw streams what json.Indent would produce, byte for byte, and
// fails as it fails on what is not JSON.
func TestPrintRawIndentsAsJSONIndent(t *testing.T) {
	for _, in := range []string{
		`{}`, `[]`, `{"a":[]}`, `{"a":{},"b":[{}]}`, `  {"plan": [ {"key": "a", "n": 1.5e3, "ok": true, "x": null} ] }  `,
		`{"s":"a,b:{c}[d] \"q\" \\ \u00e9 \\\"","t":"\\"}`, `[1,[2,[3,[]]],{"k":{"k":{}}}]`, `"just a string"`, `42`,
		"{\n  \"already\": [\n    1,\n    2\n  ]\n}\n", `{"html":"<a href=\"x\">&</a>"}`,
	} {
		var want bytes.Buffer
		if err := json.Indent(&want, bytes.TrimSpace([]byte(in)), "", "  "); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		want.WriteByte('\n')
		var got bytes.Buffer
		if err := printRaw(&got, []byte(in)); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Errorf("%s:\ngot  %q\nwant %q", in, got.Bytes(), want.Bytes())
		}
	}
	for _, bad := range []string{`{"a":`, `{"a" 1}`, `[1,]`, ``} {
		var got bytes.Buffer
		if err := printRaw(&got, []byte(bad)); err == nil || got.Len() != 0 {
			t.Errorf("%q: err %v, printed %q", bad, err, got.Bytes())
		}
	}
}

// FuzzIndenterInPieces: whatever pieces a JSON document arrives in (the
// in-process API writes it a buffer at a time, strings cut anywhere), the
// indenter writes what json.Indent writes.
func FuzzIndenterInPieces(f *testing.F) {
	for _, s := range []string{
		`{"s":"a,b:{c}[d] \"q\" \\ \u00e9 \\\"","t":"\\"}`, `{"plan":[{"key":"a","why":"x\\\"y"}]}`, `["\\\\","\""]`,
	} {
		f.Add(s, uint8(3), uint8(7))
	}
	f.Fuzz(func(t *testing.T, in string, a, b uint8) {
		var want bytes.Buffer // json.Indent keeps the spaces around the document; the indenter drops them
		if json.Indent(&want, bytes.TrimSpace([]byte(in)), "", "  ") != nil || !json.Valid([]byte(in)) {
			return
		}
		want.WriteByte('\n')
		var got bytes.Buffer
		w := newIndenter(&got)
		cut1 := min(int(a), len(in))
		cut2 := min(cut1+int(b), len(in))
		for _, piece := range []string{in[:cut1], in[cut1:cut2], in[cut2:]} {
			_, _ = w.Write([]byte(piece))
		}
		if err := w.Close(); err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("%q:\ngot  %q\nwant %q", in, got.Bytes(), want.Bytes())
		}
	})
}
