package webapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
)

// DecodeJSON parses a JSON document, keeping numbers as json.Number so that
// large ids survive. The error never quotes the document.
func DecodeJSON(body []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, errors.New("response is not JSON")
	}
	if dec.More() {
		return nil, errors.New("response holds more than one JSON value")
	}
	return v, nil
}

// Lookup follows a dotted path through a decoded JSON document: object
// members by name, array elements by index ("items.0.id"). An empty path is
// the document itself. Member names containing dots cannot be addressed.
func Lookup(doc any, path string) (any, bool) {
	if path == "" {
		return doc, true
	}
	cur := doc
	for _, seg := range strings.Split(path, ".") {
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[seg]
			if !ok {
				return nil, false
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(v) {
				return nil, false
			}
			cur = v[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// Scalar returns a string or number found by Lookup as a string; ok is
// false for anything else (null, objects, arrays, booleans) and for "".
func Scalar(v any) (string, bool) {
	switch s := v.(type) {
	case string:
		return s, s != ""
	case json.Number:
		return s.String(), true
	}
	return "", false
}

// ValidPath checks the syntax of a dotted path: no empty segment.
func ValidPath(path string) error {
	if path == "" {
		return nil
	}
	for _, seg := range strings.Split(path, ".") {
		if seg == "" {
			return errors.New("must be a dotted path such as data.0.id (empty segment)")
		}
	}
	return nil
}
