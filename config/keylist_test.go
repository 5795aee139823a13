package config

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

// manyKeys is a key list longer than one piece, with a problem in the
// first piece, one in a later piece, and one in the rest of the file.
func manyKeys(n int) string {
	var b strings.Builder
	b.WriteString("daemon: {concurrency: 0, listn: x}\nkeys:\n  # the fleet\n")
	for i := range n {
		switch i {
		case 3:
			fmt.Fprintf(&b, "  - {name: k%d, issuer: demo, sinks: [{sink: files}], colour: red}\n", i)
		case keysChunk + 7:
			fmt.Fprintf(&b, "  - name: k%d\n    issuer: demo\n    sinks: [{sink: files}]\n    policies: {max_age: soon}\n\n", i)
		default:
			fmt.Fprintf(&b, "  - {name: k%d, issuer: demo, owners: [o@example.com], sinks: [{sink: files, path: p/%d}]}\n", i, i)
		}
	}
	b.WriteString("sinks: [{name: files, type: file, dir: out}]\nzzz: 1\n")
	return b.String()
}

// A JSON configuration's key array decoded item by item gives exactly what
// the whole file parsed at once gives: the same configuration, the same
// errors in the same order (each case converted from YAML).
func TestSplitJSONKeysMatchesWholeFile(t *testing.T) {
	for name, y := range map[string]string{
		"base": base, "long with errors": manyKeys(3 * keysChunk),
		"empty list": "keys: []\n", "null keys": "keys:\nstore: {}\n", "not a list": "keys: {name: a}\n",
		"null item": "keys: [null, {name: a}]\n", "no keys": "store: {path: x.db}\n",
	} {
		t.Run(name, func(t *testing.T) {
			var doc map[string]any
			if err := yaml.Unmarshal([]byte(y), &doc); err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			gotCfg, gotErr := parse(b, "rekey.json", "/etc/rekey")
			wantCfg, wantErr := parseWhole(b, "rekey.json", "/etc/rekey")
			if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
				t.Fatalf("errors differ:\n%v\nwant\n%v", gotErr, wantErr)
			}
			if !reflect.DeepEqual(gotCfg, wantCfg) {
				t.Fatalf("configurations differ")
			}
		})
	}
	if _, _, ok := splitJSONKeys([]byte(`{"keys": [{"name": "a"}]}`)); !ok {
		t.Fatal("a JSON key list is not split")
	}
}
