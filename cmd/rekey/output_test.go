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
