package config

import (
	"bytes"
	"errors"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// A YAML configuration with 100,000 keys takes seconds to parse whole and
// holds a generic tree of the whole file. Generated configurations write
// the key list one flow mapping per line:
//
//	keys:
//	  - {name: payments-api, issuer: stripe, owners: [team@example.com], sinks: [{sink: vault}]}
//
// splitYAMLKeys reads such a list without the YAML parser, a line at a
// time, and the YAML parser reads the rest of the file with the list's
// lines blanked (so that its line numbers do not move). It accepts only a
// narrow subset that it can prove the parser reads the same way, and
// declines anything else (the whole file is then parsed as before):
//
//   - the file has no byte-order mark, carriage return, tab, NUL, directive
//     (%) or document marker (--- or ...) line, and the list is announced by
//     a line that is exactly "keys:" at column 0;
//   - the parser, given the rest of the file with that line made
//     "keys: []", finds a block mapping at the root with that very node as
//     its "keys" key, and no merge key ("<<") there;
//   - every line up to the next line at column 0 is printable ASCII and
//     blank, a comment, or
//     "- {…}" at one indentation, the mapping on one line, written with
//     plain scalars of letters, digits and "_.@/+-" and inner spaces, or
//     quoted scalars of printable ASCII without escapes or quotes inside,
//     nested at most maxFlowDepth deep, no duplicate key, no anchor, alias,
//     tag or multi-line construct.
//
// FuzzSplitYAMLKeysMatchesWholeFile checks that whatever it accepts gives
// the same configuration and errors as the whole parse.

// errDecline is how the line parser gives up.
var errDecline = errors.New("not in the fast YAML subset")

// splitYAMLKeys returns the file without its key list (for the YAML
// parser) and the list's item lines (the text after "- "); ok is false when
// the file is outside the subset.
func splitYAMLKeys(b []byte) (rest map[string]any, items [][]byte, ok bool) {
	if len(b) == 0 || bytes.IndexByte(b, '\r') >= 0 || bytes.IndexByte(b, '\t') >= 0 ||
		bytes.IndexByte(b, 0) >= 0 || bytes.Contains(b, []byte("\xef\xbb\xbf")) {
		return nil, nil, false
	}
	restDoc := make([]byte, 0, 4096)
	keysLine, line := -1, 0
	indent := -1
	inList := false
	for pos := 0; pos < len(b); line++ {
		end := bytes.IndexByte(b[pos:], '\n')
		var l []byte
		if end < 0 {
			l, pos = b[pos:], len(b)
		} else {
			l, pos = b[pos:pos+end], pos+end+1
		}
		if bytes.HasPrefix(l, []byte("---")) || bytes.HasPrefix(l, []byte("...")) || bytes.HasPrefix(l, []byte("%")) {
			return nil, nil, false
		}
		if inList && !printableASCII(l) {
			return nil, nil, false
		}
		if inList {
			t := bytes.TrimLeft(l, " ")
			col := len(l) - len(t)
			switch {
			case len(t) == 0 || t[0] == '#':
				restDoc = append(restDoc, '\n')
				continue
			case col == 0 && t[0] != '-':
				inList = false // the list ends; the line is the rest's
			case indent < 0 && bytes.HasPrefix(t, []byte("- {")):
				indent = col
				fallthrough
			case col == indent && bytes.HasPrefix(t, []byte("- {")):
				items = append(items, t[2:])
				restDoc = append(restDoc, '\n')
				continue
			default:
				return nil, nil, false
			}
		}
		if bytes.HasPrefix(l, []byte("keys")) || (len(l) > 0 && strings.IndexByte(`"'?{[`, l[0]) >= 0) {
			if string(l) != "keys:" || keysLine >= 0 {
				return nil, nil, false
			}
			keysLine, inList = line, true
			restDoc = append(restDoc, "keys: []\n"...)
			continue
		}
		restDoc = append(append(restDoc, l...), '\n')
	}
	if keysLine < 0 || len(items) == 0 {
		return nil, nil, false
	}
	rest, ok = parseRest(restDoc, keysLine+1)
	return rest, items, ok
}

// parseRest parses the file without its key list and checks that the
// line keysLine (1-based) holds the root mapping's "keys: []".
func parseRest(doc []byte, keysLine int) (map[string]any, bool) {
	var n yaml.Node
	if yaml.Unmarshal(doc, &n) != nil || n.Kind != yaml.DocumentNode || len(n.Content) != 1 {
		return nil, false
	}
	root := n.Content[0]
	if root.Kind != yaml.MappingNode || root.Style != 0 || root.Anchor != "" || root.Tag != "!!map" {
		return nil, false
	}
	found := false
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Value == "<<" || k.Tag == "!!merge" {
			return nil, false
		}
		if k.Value != "keys" {
			continue
		}
		if found || k.Line != keysLine || k.Column != 1 || k.Style != 0 || k.Tag != "!!str" ||
			v.Kind != yaml.SequenceNode || v.Style != yaml.FlowStyle || len(v.Content) != 0 || v.Line != keysLine || v.Anchor != "" {
			return nil, false
		}
		found = true
	}
	if !found {
		return nil, false
	}
	var raw map[string]any
	if n.Decode(&raw) != nil {
		return nil, false
	}
	delete(raw, "keys")
	return raw, true
}

// flowLine parses one item of the list: a flow mapping on one line,
// optionally followed by spaces and a comment.
type flowLine struct {
	s     []byte
	i     int
	cache map[string]any // plain scalars that start with a digit, as YAML resolves them
	strs  map[string]string
	depth int // of the value being read
}

func (p *flowLine) item() (any, error) {
	v, err := p.mapping()
	if err != nil {
		return nil, err
	}
	t := p.s[p.i:]
	u := bytes.TrimLeft(t, " ")
	if len(u) > 0 && (u[0] != '#' || len(u) == len(t)) {
		return nil, errDecline // not a comment after a space
	}
	return v, nil
}

func (p *flowLine) spaces() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *flowLine) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

// mapping parses {k: v, …} (no trailing comma).
func (p *flowLine) mapping() (map[string]any, error) {
	p.i++ // '{'
	m := map[string]any{}
	p.spaces()
	if p.peek() == '}' {
		p.i++
		return m, nil
	}
	for {
		k, err := p.key()
		if err != nil {
			return nil, err
		}
		if _, dup := m[k]; dup {
			return nil, errDecline
		}
		if p.peek() != ':' {
			return nil, errDecline
		}
		p.i++
		if p.peek() != ' ' {
			return nil, errDecline
		}
		p.spaces()
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		m[k] = v
		p.spaces()
		switch p.peek() {
		case ',':
			p.i++
			p.spaces()
		case '}':
			p.i++
			return m, nil
		default:
			return nil, errDecline
		}
	}
}

// sequence parses [v, …] (no trailing comma).
func (p *flowLine) sequence() ([]any, error) {
	p.i++ // '['
	l := []any{}
	p.spaces()
	if p.peek() == ']' {
		p.i++
		return l, nil
	}
	for {
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		l = append(l, v)
		p.spaces()
		switch p.peek() {
		case ',':
			p.i++
			p.spaces()
		case ']':
			p.i++
			return l, nil
		default:
			return nil, errDecline
		}
	}
}

// key parses a mapping key: a quoted scalar or a plain one YAML reads as a
// string, of at most 128 bytes (YAML bounds a simple key's length).
func (p *flowLine) key() (string, error) {
	start := p.i
	var k string
	switch c := p.peek(); {
	case c == '"' || c == '\'':
		s, err := p.quoted()
		if err != nil {
			return "", err
		}
		k = s
	case isLetter(c):
		s := p.plain()
		if _, special := yamlWords[s]; special {
			return "", errDecline
		}
		k = s
	default:
		return "", errDecline
	}
	if p.i-start > 128 {
		return "", errDecline
	}
	return k, nil
}

// maxFlowDepth bounds how deep the line reader nests mappings and
// sequences (the YAML parser has a limit of its own, far above it).
const maxFlowDepth = 16

// value parses a mapping, a sequence or a scalar.
func (p *flowLine) value() (any, error) {
	switch c := p.peek(); {
	case (c == '{' || c == '[') && p.depth >= maxFlowDepth:
		return nil, errDecline
	case c == '{':
		p.depth++
		defer func() { p.depth-- }()
		return p.mapping()
	case c == '[':
		p.depth++
		defer func() { p.depth-- }()
		return p.sequence()
	case c == '"' || c == '\'':
		return p.quoted()
	case isLetter(c):
		s := p.plain()
		if v, special := yamlWords[s]; special {
			return v, nil
		}
		return s, nil
	case c >= '0' && c <= '9':
		return p.resolved(p.plain())
	}
	return nil, errDecline
}

// yamlWords are the plain scalars starting with a letter that YAML does
// not read as strings.
var yamlWords = map[string]any{
	"true": true, "True": true, "TRUE": true,
	"false": false, "False": false, "FALSE": false,
	"null": nil, "Null": nil, "NULL": nil,
}

// plain reads a plain scalar of plainByte characters and inner spaces
// (trailing spaces are not part of it).
func (p *flowLine) plain() string {
	start, end := p.i, p.i
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c == ' ' {
			p.i++
			continue
		}
		if !isPlain(c) {
			break
		}
		p.i++
		end = p.i
	}
	p.i = end
	return p.str(p.s[start:end])
}

// str is b as a string, one string per distinct short value: the names of
// fields, issuers, sinks and teams repeat over 100,000 keys.
func (p *flowLine) str(b []byte) string {
	if len(b) > 32 {
		return string(b)
	}
	if s, ok := p.strs[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(p.strs) < 4096 {
		if p.strs == nil {
			p.strs = map[string]string{}
		}
		p.strs[s] = s
	}
	return s
}

// resolved is what YAML makes of a plain scalar that starts with a digit
// (an integer, a float, a timestamp or a string), asked of the parser
// itself once per distinct scalar.
func (p *flowLine) resolved(s string) (any, error) {
	if v, ok := p.cache[s]; ok {
		return v, nil
	}
	var v any
	if yaml.Unmarshal([]byte(s), &v) != nil {
		return nil, errDecline
	}
	switch v.(type) {
	case string, int, int64, uint64, float64:
	default:
		return nil, errDecline
	}
	if p.cache == nil {
		p.cache = map[string]any{}
	}
	p.cache[s] = v
	return v, nil
}

// quoted reads a quoted scalar of printable ASCII without escapes or
// inner quotes.
func (p *flowLine) quoted() (string, error) {
	q := p.s[p.i]
	p.i++
	start := p.i
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == q:
			p.i++
			return p.str(p.s[start : p.i-1]), nil
		case c < 0x20 || c > 0x7e || c == '\\' || c == '"' || c == '\'':
			return "", errDecline
		}
		p.i++
	}
	return "", errDecline
}

// printableASCII reports whether l holds only printable ASCII (what the
// list's lines, comments included, may hold).
func printableASCII(l []byte) bool {
	for _, c := range l {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isPlain(c byte) bool {
	return isLetter(c) || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '@' || c == '/' || c == '+' || c == '-'
}

// decodeYAMLItems parses the item lines and decodes them into keys; ok is
// false when a line is outside the subset.
func decodeYAMLItems(items [][]byte, keys *[]Key, errs *Errors) bool {
	p := &flowLine{}
	return decodeKeyItems(func(emit func(any)) bool {
		for _, l := range items {
			p.s, p.i = l, 0
			v, err := p.item()
			if err != nil {
				return false
			}
			emit(v)
		}
		return true
	}, len(items), keys, errs)
}
