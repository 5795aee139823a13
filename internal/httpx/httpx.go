// Package httpx holds the small HTTP helpers rekey's inbound handlers share:
// a bounded body read that tells "too large" apart from other failures,
// method and media-type checks, and JSON answers whose errors are plain
// messages chosen by the handler (never an echo of the request).
package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// MaxBody bounds every inbound request body: 1 MiB.
const MaxBody = 1 << 20

// ErrTooLarge is returned by ReadBody when the body exceeds its limit.
var ErrTooLarge = errors.New("request body too large")

// ReadBody reads the whole body, at most limit bytes (MaxBody when limit ≤
// 0). A longer body — announced by Content-Length or found while reading —
// yields ErrTooLarge without reading the rest.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = MaxBody
	}
	if r.ContentLength > limit {
		return nil, ErrTooLarge
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, ErrTooLarge
		}
		return nil, err
	}
	return b, nil
}

// ReadBodyOrFail is ReadBody that answers the failure itself (413 or 400)
// and reports whether the caller may go on.
func ReadBodyOrFail(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	b, err := ReadBody(w, r, limit)
	switch {
	case errors.Is(err, ErrTooLarge):
		WriteError(w, http.StatusRequestEntityTooLarge, "request body exceeds 1 MiB")
		return nil, false
	case err != nil:
		WriteError(w, http.StatusBadRequest, "could not read the request body")
		return nil, false
	}
	return b, true
}

// AllowMethod answers 405 with an Allow header unless r uses method.
func AllowMethod(w http.ResponseWriter, r *http.Request, method string) bool {
	if r.Method == method {
		return true
	}
	w.Header().Set("Allow", method)
	WriteError(w, http.StatusMethodNotAllowed, "method not allowed; use "+method)
	return false
}

// MediaType returns r's Content-Type without parameters, lowercased ("" if
// absent or malformed).
func MediaType(r *http.Request) string {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return ""
	}
	return strings.ToLower(mt)
}

// RequireMediaType answers 415 unless r's Content-Type is one of types.
func RequireMediaType(w http.ResponseWriter, r *http.Request, types ...string) bool {
	mt := MediaType(r)
	for _, t := range types {
		if mt == t {
			return true
		}
	}
	w.Header().Set("Accept", strings.Join(types, ", "))
	WriteError(w, http.StatusUnsupportedMediaType, "Content-Type must be "+strings.Join(types, " or "))
	return false
}

// WriteJSON answers status with v as JSON. Answers are never cached.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Error is the body of every error answer.
type Error struct {
	Error string `json:"error"`
}

// WriteError answers status with {"error": msg}. msg is chosen by the
// handler and must not echo request content.
func WriteError(w http.ResponseWriter, status int, msg string) {
	WriteJSON(w, status, Error{Error: msg})
}

// DecodeStrict decodes one JSON value from b into v, refusing unknown
// fields and trailing data. Its error describes the JSON problem but never
// quotes a string value of the document.
func DecodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return describeJSONError(err)
	}
	if dec.More() {
		return errors.New("trailing data after the JSON value")
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// describeJSONError turns a decoding error into a message that names the
// field or offset but never the offending value (which may be a token).
func describeJSONError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return errors.New("empty body")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("truncated JSON")
	case errors.As(err, &syn):
		return errors.New("malformed JSON at offset " + strconv.FormatInt(syn.Offset, 10))
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return errors.New("wrong JSON type: expected " + typ.Type.String())
		}
		return errors.New(field + ": wrong JSON type: expected " + typ.Type.String())
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		if plainName(name) {
			return errors.New("unknown field " + strconv.Quote(name))
		}
		return errors.New("unknown field")
	}
	return errors.New("malformed JSON")
}

// plainName reports whether a JSON member name looks like a field name
// (short, lowercase letters and underscores), so that quoting it back
// cannot echo a token someone used as a key.
func plainName(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && c != '_' {
			return false
		}
	}
	return true
}
