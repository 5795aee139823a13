package config

import (
	"strings"
)

// FieldError is one problem with the configuration, located by its YAML path
// (e.g. `keys[2].sinks[0].sink`).
type FieldError struct {
	Path string
	Msg  string
}

func (e FieldError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Errors is every problem found; it is returned whole so that `rekey
// validate` can list them all at once.
type Errors []FieldError

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Add appends a problem at path.
func (es *Errors) Add(path, format string, args ...any) {
	*es = append(*es, FieldError{Path: path, Msg: sprintf(format, args...)})
}

// AddErr appends err, whose text may hold several "field: message" lines
// (the adapter convention), each prefixed with path.
func (es *Errors) AddErr(path string, err error) {
	if err == nil {
		return
	}
	if more, ok := err.(Errors); ok {
		for _, e := range more {
			*es = append(*es, FieldError{Path: join(path, e.Path), Msg: e.Msg})
		}
		return
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		field, msg, ok := strings.Cut(line, ": ")
		if ok && isFieldPath(field) {
			*es = append(*es, FieldError{Path: join(path, field), Msg: msg})
		} else {
			*es = append(*es, FieldError{Path: path, Msg: line})
		}
	}
}

// Err returns es as an error, or nil when empty.
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

func isFieldPath(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r == '.' || r == '[' || r == ']' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func join(path, field string) string {
	switch {
	case path == "":
		return field
	case field == "":
		return path
	case strings.HasPrefix(field, "["):
		return path + field
	}
	return path + "." + field
}
