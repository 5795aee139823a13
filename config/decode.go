package config

import (
	"errors"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/go-viper/mapstructure/v2"
)

// Decode decodes raw (a YAML mapping as loaded) into out strictly: a field
// out does not declare is an error naming its path, durations accept days
// and weeks, and type errors name their path. Adapters' settings are decoded
// with it so that every problem carries a YAML path such as `sinks[1].mount`.
func Decode(raw map[string]any, out any, path string) error {
	var errs Errors
	checkUnknown(raw, reflect.TypeOf(out), path, &errs)
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		TagName:          "koanf",
		Result:           out,
		WeaklyTypedInput: true,
		DecodeHook:       durationHook,
	})
	if err != nil {
		return err
	}
	if err := dec.Decode(raw); err != nil {
		collectDecodeErrors(err, path, &errs)
	}
	return errs.Err()
}

func collectDecodeErrors(err error, path string, errs *Errors) {
	if multi, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range multi.Unwrap() {
			collectDecodeErrors(e, path, errs)
		}
		return
	}
	var de *mapstructure.DecodeError
	if errors.As(err, &de) {
		msg := de.Unwrap().Error()
		if inner, ok := de.Unwrap().(interface{ Unwrap() []error }); ok {
			for _, e := range inner.Unwrap() {
				collectDecodeErrors(e, join(path, de.Name()), errs)
			}
			return
		}
		errs.Add(join(path, de.Name()), "%s", msg)
		return
	}
	errs.Add(path, "%s", err.Error())
}

// checkUnknown walks raw against t and reports keys t does not declare.
func checkUnknown(raw any, t reflect.Type, path string, errs *Errors) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := raw.(map[string]any)
		if !ok {
			return // type errors are reported by the decoder
		}
		fields := map[string]reflect.Type{}
		remain := structFields(t, fields)
		for k, v := range m {
			ft, ok := fields[k]
			if !ok {
				if remain {
					continue
				}
				errs.Add(join(path, k), "%s", unknownMsg(k, fields))
				continue
			}
			checkUnknown(v, ft, join(path, k), errs)
		}
	case reflect.Slice, reflect.Array:
		l, ok := raw.([]any)
		if !ok {
			return
		}
		for i, v := range l {
			checkUnknown(v, t.Elem(), path+"["+itoa(i)+"]", errs)
		}
	case reflect.Map:
		m, ok := raw.(map[string]any)
		if !ok {
			return
		}
		for k, v := range m {
			checkUnknown(v, t.Elem(), join(path, k), errs)
		}
	}
}

// structFields collects t's koanf field names (flattening `,squash`) and
// reports whether t keeps unknown keys (`,remain`).
func structFields(t reflect.Type, fields map[string]reflect.Type) (remain bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("koanf"), ",")
		switch {
		case strings.Contains(opts, "remain"):
			remain = true
			continue
		case strings.Contains(opts, "squash"):
			if structFields(f.Type, fields) {
				remain = true
			}
			continue
		}
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
	}
	return remain
}

func unknownMsg(k string, fields map[string]reflect.Type) string {
	if _, ok := fields[k+"_env"]; ok {
		return "inline secrets are not allowed; use " + k + "_env or " + k + "_file"
	}
	known := make([]string, 0, len(fields))
	for f := range fields {
		known = append(known, f)
	}
	sort.Strings(known)
	return "unknown field (known: " + strings.Join(known, ", ") + ")"
}

func itoa(i int) string { return strconv.Itoa(i) }
