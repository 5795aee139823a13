package config

import (
	"fmt"
	"reflect"
	"testing"
)

// FuzzSplitJSONKeysMatchesWholeFile: for any JSON file, decoding the key
// array item by item (when it takes that path) gives exactly what parsing
// the whole file gives — the same configuration and the same errors in the
// same order.
func FuzzSplitJSONKeysMatchesWholeFile(f *testing.F) {
	for _, seed := range []string{
		`{"keys": [{"name": "a", "issuer": "demo", "sinks": [{"sink": "s"}]}], "sinks": []}`,
		`{"keys": [null, {"name": "a"}]}`,
		`{"keys": [], "store": {"path": "x.db"}}`,
		`{"keys": [{"name": [1]}, {"colour": "red"}], "zzz": 1}`,
		`{"keys": [{"name": "a"}], "keys": [{"name": "b"}]}`,
		`{"keys": [{"name": "a", "policies": {"max_age": "soon"}}] }`,
		`{"keys": {"name": "a"}}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		gotCfg, gotErr := parse([]byte(doc), "rekey.json", "/etc/rekey")
		wantCfg, wantErr := parseWhole([]byte(doc), "rekey.json", "/etc/rekey")
		if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
			t.Fatalf("errors differ for %q:\n%v\nwant\n%v", doc, gotErr, wantErr)
		}
		if !reflect.DeepEqual(gotCfg, wantCfg) {
			t.Fatalf("configurations differ for %q", doc)
		}
	})
}
