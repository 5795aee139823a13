package config

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// yamlSplitSeeds are files around the edges of the subset the line
// reader of the key list accepts (yamlkeys.go).
var yamlSplitSeeds = []string{
	"store: {path: x.db}\nkeys:\n  - {name: a, issuer: demo, owners: [t@example.com], sinks: [{sink: s}]}\n  - {name: b, sinks: [{sink: s, path: p/q}]}\nsinks: []\n",
	"keys:\n- {name: a}\n- {name: b, verify: true, bootstrap: False, params: {n: 12, f: 1.5, d: 2001-12-14, z: 0x1F}}\n",
	"keys:\n  - {name: a}  # a comment\n\n  # between\n  - {name: 'b c', issuer: \"d e\"}\nzzz: 1\n",
	"keys:\n  - {name: a, name: b}\n",
	"keys:\n  - {name: a}\n    - {name: b}\n",
	"keys:\n  - {name: a}\nkeys:\n  - {name: b}\n",
	"a: &x {name: a}\nkeys:\n  - *x\n",
	"a: \"x\nkeys:\n  - {name: a}\n\"\n",
	"a: |\n  x\nkeys:\n  - {name: a}\n",
	"<<: {keys: [{name: z}]}\nkeys:\n  - {name: a}\n",
	"keys:\n  - {name: a, policies: {max_age: 30d, warn_before: 7d}}\n---\nkeys: []\n",
	"keys:\n  - {name: a, owners: [x y, z]}\n  - {name: null, issuer: ~}\n",
	"keys:\n  - {name: a, sinks: [{sink: s, params: {k: v}}], colour: red}\n  - {name: [1]}\n",
	"{keys: [{name: a}]}\n",
	"keys:\n  - {name: a}\n  - name: b\n",
	"keys:\n  - {name: a}\n- {name: b}\n",
	"keys:\n  - {name: a}\n  - {name: a:b}\n  - {name: a #b}\n",
	"keys:\n  - {name: a} #c\n  - {name: b}#c\n",
	"daemon: {listen: 127.0.0.1:0}\nkeys:\n  - {name: a, policies: {max_age: soon}}\ndefaults: {policies: {max_age: 90d}}\n",
}

// FuzzSplitYAMLKeysMatchesWholeFile: for any YAML file, reading the key
// list line by line (when the file is in the subset that path accepts)
// gives exactly what parsing the whole file gives — the same configuration
// and the same errors in the same order.
func FuzzSplitYAMLKeysMatchesWholeFile(f *testing.F) {
	for _, seed := range yamlSplitSeeds {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		if len(doc) > 16<<10 {
			return
		}
		checkYAMLSplit(t, doc)
	})
}

// yamlScalars and yamlTokens are what FuzzSplitYAMLKeysGenerated writes
// files with: the subset's scalars and pieces, and YAML around its edges.
var (
	yamlScalars = []string{"a", "b1", "k-0", "x y", "a.b@c/d+e", "true", "False", "NULL", "null", "~", "1", "0x1F", "1e3", "07", "1_000",
		"-1", ".5", "2001-12-14", "90d", "1:2", "a:b", "'s q'", "\"d q\"", "''", "\"\"", "'it''s'", "\"e\\tx\"", "<<", "y", "on",
		"1 2", "0o7", "+1", "1.", "name", "keys", "12345678901234567890", "0b1", ".inf", "a #b", "a#b", "a ", " a"}
	yamlTokens = []string{"keys:\n", "  - {", "- {", "    - {", "{", "}", "[", "]", ", ", ",", ": ", ":", " ", "  ", " # c", "#", "\n",
		"\n\n", "---\n", "...\n", "%YAML 1.2\n", "&a ", "*a", "!!str ", "|\n", ">-\n", "? ", "\t", "\r\n", "\xef\xbb\xbf",
		"\xc3\xa9", "x: |\n  ", "y: \"", "z: [\n", "  # comment\n", "\x00", "\x7f", "  - name: a\n", "    issuer: b\n"}
	// yamlTops are top-level entries around the key list.
	yamlTops = []string{"store: {path: x.db}\n", "sinks: [{name: s, type: file}]\n", "defaults: {policies: {max_age: 30d}}\n",
		"issuers: [{name: a, type: random}]\n", "x: |\n  keys:\n"}
)

// choices reads a fuzz input as a stream of choices (0 once it is used up).
type choices []byte

func (c *choices) next(n int) int {
	if len(*c) == 0 {
		return 0
	}
	b := (*c)[0]
	*c = (*c)[1:]
	return int(b) % n
}

// value writes a flow value of at most depth levels.
func (c *choices) value(b *strings.Builder, depth int) {
	switch k := c.next(6); {
	case k == 0 && depth > 0:
		c.mapping(b, depth-1)
	case k == 1 && depth > 0:
		b.WriteString("[")
		for i := range c.next(4) {
			if i > 0 {
				b.WriteString(", ")
			}
			c.value(b, depth-1)
		}
		b.WriteString("]")
	default:
		b.WriteString(yamlScalars[c.next(len(yamlScalars))])
	}
}

func (c *choices) mapping(b *strings.Builder, depth int) {
	b.WriteString("{")
	for i := range c.next(5) {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString([]string{"name", "issuer", "owners", "sinks", "sink", "path", "params", "verify", "policies", "max_age",
			"colour", "'q k'", "\"d k\"", "1", "true", "a b"}[c.next(16)])
		b.WriteString(": ")
		c.value(b, depth)
	}
	b.WriteString("}")
}

// FuzzSplitYAMLKeysGenerated is FuzzSplitYAMLKeysMatchesWholeFile over
// files the input writes as choices: key lists in the subset, with a
// token of YAML around its edges dropped in here and there, so that the
// line reader's accepting paths are taken far more often than with random
// bytes.
func FuzzSplitYAMLKeysGenerated(f *testing.F) {
	for _, seed := range []string{"", "\x01\x02\x03\x04\x05\x06\x07\x08\x09", "\x00\x05\x01\x03\x07\x00\x02\x00\x04\x01\x09"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		c := choices(in)
		var b strings.Builder
		for range c.next(3) {
			b.WriteString(yamlTops[c.next(len(yamlTops))])
		}
		b.WriteString("keys:\n")
		indent := []string{"", "  ", "    "}[c.next(3)]
		for range 1 + c.next(4) {
			b.WriteString(indent + "- ")
			c.mapping(&b, 2)
			if c.next(4) == 0 {
				b.WriteString(" # c")
			}
			b.WriteString("\n")
			if c.next(3) == 0 { // a token of YAML around the edges
				b.WriteString(yamlTokens[c.next(len(yamlTokens))])
			}
		}
		if c.next(2) == 0 {
			b.WriteString(yamlTops[c.next(len(yamlTops))])
		}
		checkYAMLSplit(t, b.String())
	})
}

func checkYAMLSplit(t *testing.T, doc string) (split bool) {
	t.Helper()
	gotCfg, split, gotErr := parseSplit([]byte(doc), "rekey.yaml", "/etc/rekey")
	if !split {
		return false
	}
	wantCfg, wantErr := parseWhole([]byte(doc), "rekey.yaml", "/etc/rekey")
	if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
		t.Fatalf("errors differ for %q:\n%v\nwant\n%v", doc, gotErr, wantErr)
	}
	if !reflect.DeepEqual(gotCfg, wantCfg) {
		t.Fatalf("configurations differ for %q:\n%+v\nwant\n%+v", doc, gotCfg, wantCfg)
	}
	return true
}

// TestSplitYAMLKeys: the line reader takes generated lists (so the fuzz
// test above compares something) and declines what it cannot prove the
// parser reads the same way.
func TestSplitYAMLKeys(t *testing.T) {
	for _, doc := range []string{
		yamlSplitSeeds[0], yamlSplitSeeds[2], yamlSplitSeeds[12], yamlSplitSeeds[18],
		"keys:\n- {name: a}\n- {name: b, verify: true, bootstrap: False, params: {n: 12, f: 1.5, z: 0x1F}}\n",
	} {
		if !checkYAMLSplit(t, doc) {
			t.Errorf("the line reader declined %q", doc)
		}
	}
	for _, doc := range []string{
		"keys:\n  - {name: a, name: b}\n",                 // duplicate key: the parser's error
		"a: &x {name: a}\nkeys:\n  - *x\n",                // alias
		"a: \"x\nkeys:\n  - {name: a}\n\"\n",              // inside a quoted scalar
		"<<: {keys: [{name: z}]}\nkeys:\n  - {name: a}\n", // merge key
		"keys:\n  - {name: a}\n---\nkeys: []\n",           // two documents
		"keys:\n  - {name: a}\n  - name: b\n",             // block mapping
		"keys:\n  - {name: a, d: 2001-12-14}\n",           // a timestamp
		"keys:\n  - {name: \"a\\tb\"}\n",                  // an escape
		"keys:\n  - {name: a}\r\n",                        // CR
		"\xef\xbb\xbfkeys:\n  - {name: a}\n",              // BOM
		"keys:\n  - {name: a,\n     issuer: b}\n",         // a flow mapping over two lines
		"keys:\n  - {name: a} # caf\xc3\xa9\n",            // not ASCII
		"keys:\n  - !!map {name: a}\n",                    // tag
		"keys:\n  - {name: a}\nkeys:\n  - {name: b}\n",    // duplicate list
		"%YAML 1.2\n---\nkeys:\n  - {name: a}\n",          // directive
		"keys: \n  - {name: a}\n",                         // not exactly "keys:"
		"x:\n  keys:\n  - {name: a}\n",                    // not at the root
		"keys:\n  - {name: a, 1: b}\n",                    // a key that is not a string
		"keys:\n  - {name: a, params: {x: " + strings.Repeat("[", 17) + strings.Repeat("]", 17) + "}}\n", // deeper than maxFlowDepth
	} {
		if _, split, _ := parseSplit([]byte(doc), "rekey.yaml", ""); split {
			t.Errorf("the line reader took %q", doc)
		}
	}
}
