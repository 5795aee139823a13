package config

import (
	"bytes"
	"encoding/json"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"

	yaml "go.yaml.in/yaml/v3"
)

// keysChunk is how many list items of `keys` are parsed at once.
const keysChunk = 1024

// keyList is the `keys` section of a configuration, split from the rest
// of the file so that it is parsed and decoded piece by piece: a
// configuration with 100,000 keys otherwise holds its whole YAML node
// tree (about 2.5 KB per key) and generic maps at once. Only the layout
// that splits unambiguously takes this path; anything else (and any
// problem in a piece) parses the whole file as before, so that the
// result and every error are the same either way.
type keyList struct {
	chunks [][]byte // YAML: block-sequence items, keysChunk at a time
	counts []int    // the items in each chunk
	json   []byte   // JSON: the array, as written
}

// splitYAMLKeys cuts the top-level `keys:` block sequence out of a YAML
// file. It returns the rest of the file and the list, or ok false when the
// file is not laid out so that the cut is certain: one `keys:` line at
// column 0 followed by a block sequence, no document markers or
// directives.
func splitYAMLKeys(b []byte) (rest []byte, kl *keyList, ok bool) {
	lines := bytes.SplitAfter(b, []byte("\n"))
	start := -1
	for i, l := range lines {
		if bytes.HasPrefix(l, []byte("---")) || bytes.HasPrefix(l, []byte("...")) || bytes.HasPrefix(l, []byte("%")) {
			return nil, nil, false
		}
		if bytes.HasPrefix(l, []byte("keys:")) {
			tail := strings.TrimSpace(string(l[len("keys:"):]))
			if start >= 0 || (tail != "" && !strings.HasPrefix(tail, "#")) {
				return nil, nil, false
			}
			start = i
		}
	}
	if start < 0 {
		return nil, nil, false
	}
	indent, end := -1, len(lines)
	kl = &keyList{}
	var cur []byte
	n := 0
	for i := start + 1; i < len(lines); i++ {
		l := lines[i]
		trimmed := bytes.TrimLeft(l, " ")
		body := bytes.TrimRight(trimmed, "\r\n")
		if len(body) == 0 || body[0] == '#' {
			cur = append(cur, l...)
			continue
		}
		col := len(l) - len(trimmed)
		item := body[0] == '-' && (len(body) == 1 || body[1] == ' ')
		if indent < 0 {
			if !item {
				return nil, nil, false // `keys:` is not followed by a block sequence
			}
			indent = col
		}
		if col == 0 && !(indent == 0 && item) {
			end = i
			break
		}
		if item && col == indent {
			if n == keysChunk {
				kl.chunks, kl.counts = append(kl.chunks, cur), append(kl.counts, n)
				cur, n = nil, 0
			}
			n++
		}
		cur = append(cur, l...)
	}
	if indent < 0 {
		return nil, nil, false
	}
	kl.chunks, kl.counts = append(kl.chunks, cur), append(kl.counts, n)
	for _, l := range lines[:start] {
		rest = append(rest, l...)
	}
	for _, l := range lines[end:] {
		rest = append(rest, l...)
	}
	return rest, kl, true
}

// splitJSONKeys takes the top-level "keys" array out of a JSON object
// without decoding it; ok is false when there is none or it is not an
// array (the whole-file path then reports it).
func splitJSONKeys(b []byte) (rest map[string]any, kl *keyList, ok bool) {
	var top map[string]json.RawMessage
	if json.Unmarshal(b, &top) != nil {
		return nil, nil, false
	}
	raw, has := top["keys"]
	if !has || len(raw) == 0 || raw[0] != '[' {
		return nil, nil, false
	}
	delete(top, "keys")
	rest = make(map[string]any, len(top))
	for k, v := range top {
		var x any
		if json.Unmarshal(v, &x) != nil {
			return nil, nil, false
		}
		rest[k] = x
	}
	return rest, &keyList{json: raw}, true
}

var keyType = reflect.TypeFor[Key]()

// decode decodes the list into keys, piece by piece, exactly as Decode
// decodes the `keys` field. ok is false when a YAML piece does not parse
// on its own or uses anchors or aliases (which may reach across pieces):
// the caller then takes the whole-file path.
func (kl *keyList) decode(keys *[]Key, errs *Errors) (ok bool) {
	if kl.json != nil {
		return kl.decodeJSON(keys, errs)
	}
	total := 0
	starts := make([]int, len(kl.chunks))
	for i, c := range kl.counts {
		starts[i] = total
		total += c
	}
	// The pieces are independent: they parse in parallel (YAML parsing
	// is most of the cost), each into its own part of out, and their
	// errors are joined in order.
	out := make([]Key, total)
	perChunk := make([]Errors, len(kl.chunks))
	failed := make([]bool, len(kl.chunks))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(kl.chunks)) {
		wg.Go(func() {
			for i := range next {
				failed[i] = !kl.decodeChunk(i, out[starts[i]:starts[i]+kl.counts[i]], starts[i], &perChunk[i])
			}
		})
	}
	for i := range kl.chunks {
		next <- i
	}
	close(next)
	wg.Wait()
	for i := range kl.chunks {
		if failed[i] {
			return false
		}
		*errs = append(*errs, perChunk[i]...)
	}
	*keys = out
	return true
}

// decodeChunk decodes piece i, whose first item is keys[base], into out.
func (kl *keyList) decodeChunk(i int, out []Key, base int, errs *Errors) bool {
	var doc yaml.Node
	if yaml.Unmarshal(kl.chunks[i], &doc) != nil || len(doc.Content) != 1 || hasAnchors(&doc) {
		return false
	}
	var items []any
	if doc.Content[0].Decode(&items) != nil || len(items) != len(out) {
		return false
	}
	for j, x := range items {
		decodeValue(x, reflect.ValueOf(&out[j]).Elem(), "keys["+strconv.Itoa(base+j)+"]", errs)
	}
	return true
}

// decodeJSON parses the array's items in this goroutine and decodes them
// into keys in another, a batch at a time, in order.
func (kl *keyList) decodeJSON(keys *[]Key, errs *Errors) bool {
	dec := json.NewDecoder(bytes.NewReader(kl.json))
	if t, err := dec.Token(); err != nil || t != json.Delim('[') {
		return false
	}
	batches := make(chan []any, 2)
	done := make(chan []Key)
	go func() {
		out := []Key{}
		for b := range batches {
			for _, x := range b {
				i := len(out)
				out = append(out, Key{})
				decodeValue(x, reflect.ValueOf(&out[i]).Elem(), "keys["+strconv.Itoa(i)+"]", errs)
			}
		}
		done <- out
	}()
	ok := true
	batch := make([]any, 0, keysChunk)
	for dec.More() {
		var x any
		if dec.Decode(&x) != nil {
			ok = false
			break
		}
		if batch = append(batch, x); len(batch) == keysChunk {
			batches <- batch
			batch = make([]any, 0, keysChunk)
		}
	}
	batches <- batch
	close(batches)
	out := <-done
	if !ok {
		return false
	}
	if cap(out) > len(out)+len(out)/16 {
		out = append(make([]Key, 0, len(out)), out...) // kept for the process's life: no spare capacity
	}
	*keys = out
	return true
}

func hasAnchors(n *yaml.Node) bool {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return true
	}
	for _, c := range n.Content {
		if hasAnchors(c) {
			return true
		}
	}
	return false
}

// mergeKeyErrors places the errors of the `keys` section where Decode
// would have reported them: top-level fields are decoded in sorted order.
func mergeKeyErrors(rest, keyErrs Errors) Errors {
	if len(keyErrs) == 0 {
		return rest
	}
	at := len(rest)
	for i, e := range rest {
		if topField(e.Path) > "keys" {
			at = i
			break
		}
	}
	out := make(Errors, 0, len(rest)+len(keyErrs))
	out = append(out, rest[:at]...)
	out = append(out, keyErrs...)
	return append(out, rest[at:]...)
}

func topField(path string) string {
	if i := strings.IndexAny(path, ".["); i >= 0 {
		return path[:i]
	}
	return path
}
