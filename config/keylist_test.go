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

// The key list parsed apart, a piece at a time, must give exactly what
// the whole file parsed at once gives: the same configuration, the same
// errors in the same order.
func TestSplitKeysMatchesWholeFile(t *testing.T) {
	long := manyKeys(2*keysChunk + 5)
	tests := map[string]struct {
		yaml  string
		split bool // the layout takes the split path
	}{
		"base":              {base, true},
		"long with errors":  {long, true},
		"crlf":              {strings.ReplaceAll(base, "\n", "\r\n"), true},
		"list at column 0":  {"keys:\n- {name: a, issuer: demo, sinks: [{sink: s}]}\n- name: b\n  issuer: x\nsinks: []\n", true},
		"block scalar":      {"keys:\n  - name: a\n    description: |\n      one\n      - two\n  - name: b\n", true},
		"keys then comment": {"keys: # all of them\n  - name: a\n# done\nstore: {path: x.db}\n", true},
		"anchors":           {"keys:\n  - &k {name: a, issuer: demo}\n  - <<: *k\n    name: b\n", true},
		"flow list":         {"keys: [{name: a}, {name: b}]\n", false},
		"empty list":        {"keys: []\n", false},
		"not a list":        {"keys:\n  name: a\n", false},
		"twice":             {"keys:\n  - name: a\nkeys:\n  - name: b\n", false},
		"split flow item":   {"keys:\n  - {name: a,\n  - b}\n", true},
		"document marker":   {"---\nkeys:\n  - name: a\n", false},
		"bad yaml in rest":  {"keys:\n  - name: a\nstore: {path: [\n", true},
		"null keys":         {"keys:\nstore: {}\n", false},
		"wrong types":       {"keys:\n  - name: [a]\n    approval: 3\n    bootstrap: maybe\n", true},
		"no keys":           {"store: {path: x.db}\n", false},
		"only keys":         {"keys:\n  - {name: a, issuer: demo, sinks: [{sink: s}]}\n", true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, _, ok := splitYAMLKeys([]byte(tc.yaml))
			if ok != tc.split {
				t.Errorf("split path taken: %v, want %v", ok, tc.split)
			}
			if _, kl, ok := splitYAMLKeys([]byte(tc.yaml)); ok && name == "anchors" {
				var errs Errors
				if kl.decode(new([]Key), &errs) {
					t.Error("anchors decoded apart: an alias may name an anchor in another piece")
				}
			}
			gotCfg, gotErr := parse([]byte(tc.yaml), "rekey.yaml", "/etc/rekey")
			wantCfg, wantErr := parseWhole([]byte(tc.yaml), "rekey.yaml", "/etc/rekey")
			if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
				t.Fatalf("errors differ:\n%v\nwant\n%v", gotErr, wantErr)
			}
			if !reflect.DeepEqual(gotCfg, wantCfg) {
				t.Fatalf("configurations differ")
			}
			if name == "long with errors" {
				if gotCfg == nil || len(gotCfg.Keys) != 2*keysChunk+5 || gotCfg.Sinks[0].Settings["dir"] != "/etc/rekey/out" {
					t.Fatalf("long config not decoded: %+v", gotCfg)
				}
				for _, want := range []string{"daemon.listn: unknown field", "keys[3].colour: unknown field", fmt.Sprintf("keys[%d].policies.max_age: invalid duration", keysChunk+7), "zzz: unknown field"} {
					if !strings.Contains(gotErr.Error(), want) {
						t.Errorf("missing %q in\n%v", want, gotErr)
					}
				}
			}
		})
	}
}

// The same for a JSON configuration (converted from each YAML case).
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
