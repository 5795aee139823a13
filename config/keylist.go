package config

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
)

// keysChunk is how many items of the `keys` array are decoded at once.
const keysChunk = 1024

// keyList is the `keys` array of a JSON configuration, taken out of the
// rest of the file so that it is parsed and decoded item by item: a
// configuration with 100,000 keys otherwise holds its whole generic tree
// at once. A YAML configuration is parsed whole: cutting YAML by lines
// was tried and a fuzz test kept finding files the cut read differently
// from the parser. Anything the array does not decode item by item
// parses the whole file as before, so the result and every error are the
// same either way.
type keyList struct {
	json []byte // the array, as written
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

// decode decodes the list into keys exactly as Decode decodes the `keys`
// field; ok is false when the array does not parse item by item (the
// caller then takes the whole-file path).
func (kl *keyList) decode(keys *[]Key, errs *Errors) (ok bool) {
	dec := json.NewDecoder(bytes.NewReader(kl.json))
	if t, err := dec.Token(); err != nil || t != json.Delim('[') {
		return false
	}
	return decodeKeyItems(func(emit func(any)) bool {
		for dec.More() {
			var x any
			if dec.Decode(&x) != nil {
				return false
			}
			emit(x)
		}
		return true
	}, sizeHint(kl.json), keys, errs)
}

// sizeHint guesses how many keys a JSON key array holds: each key names
// itself once, usually, and takes more than 40 bytes (the guess never
// reserves much more memory than the file's generic tree would take).
func sizeHint(array []byte) int {
	return min(bytes.Count(array, []byte(`"name"`)), len(array)/40)
}

// decodeKeyItems decodes the items produce emits (each as the YAML or
// JSON parser would have produced it) into keys in another goroutine, a
// batch at a time, in order, with the paths Decode gives them; ok is false
// when produce gives up (nothing is stored then). n is about how many
// items produce emits (0: unknown); a slice with much room to spare is
// copied to its length.
func decodeKeyItems(produce func(emit func(any)) bool, n int, keys *[]Key, errs *Errors) bool {
	batches := make(chan []any, 2)
	done := make(chan []Key)
	var decErrs Errors
	go func() {
		out := make([]Key, 0, n)
		for b := range batches {
			for _, x := range b {
				i := len(out)
				out = append(out, Key{})
				decodeValue(x, reflect.ValueOf(&out[i]).Elem(), &yamlPath{parent: &keysPath, list: true, index: i}, &decErrs)
			}
		}
		done <- out
	}()
	batch := make([]any, 0, keysChunk)
	ok := produce(func(x any) {
		if batch = append(batch, x); len(batch) == keysChunk {
			batches <- batch
			batch = make([]any, 0, keysChunk)
		}
	})
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
	*errs = append(*errs, decErrs...)
	return true
}

// keysPath is the path of the key list.
var keysPath = yamlPath{base: "keys"}

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
