package app

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/rekeyhq/rekey/config"
	"github.com/rekeyhq/rekey/internal/secretref"
)

// SecretRef is one `*_env` or `*_file` reference in a configuration, by
// its YAML path.
type SecretRef struct {
	Path string // e.g. issuers[0].auth.token_env
	Ref  secretref.Ref
}

// outputFiles are `*_file` fields rekey writes, not reads.
var outputFiles = map[string]bool{"address_file": true, "admin_address_file": true}

// SecretRefs lists every `*_env` and `*_file` reference in cfg — the
// daemon's own fields and every adapter's settings, nested or not — in
// YAML order, so that all of them can be resolved at once.
func SecretRefs(cfg *config.Config) []SecretRef {
	var out []SecretRef
	walkRefs(reflect.ValueOf(*cfg), "", &out)
	return out
}

// MissingSecrets resolves every reference of cfg and reports each one that
// does not resolve (unset or empty variable, unreadable or empty file) as
// a config.Errors naming its YAML path. It never returns a value.
func MissingSecrets(cfg *config.Config) config.Errors {
	var errs config.Errors
	for _, r := range SecretRefs(cfg) {
		if _, err := r.Ref.Resolve(); err != nil {
			errs.Add(r.Path, "%v", err)
		}
	}
	return errs
}

func walkRefs(v reflect.Value, path string, out *[]SecretRef) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			walkRefs(v.Elem(), path, out)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			tag, opts, _ := strings.Cut(f.Tag.Get("koanf"), ",")
			switch {
			case tag == "-":
				continue
			case tag == "" && (strings.Contains(opts, "remain") || strings.Contains(opts, "squash") || f.Anonymous):
				walkRefs(v.Field(i), path, out)
				continue
			case tag == "":
				continue
			}
			p := join(path, tag)
			if fv := v.Field(i); fv.Kind() == reflect.String {
				addRef(p, tag, fv.String(), out)
			} else {
				walkRefs(fv, p, out)
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			walkRefs(v.Index(i), fmt.Sprintf("%s[%d]", path, i), out)
		}
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return
		}
		keys := make([]string, 0, v.Len())
		for _, k := range v.MapKeys() {
			keys = append(keys, k.String())
		}
		sort.Strings(keys)
		for _, k := range keys {
			e := v.MapIndex(reflect.ValueOf(k).Convert(v.Type().Key()))
			for e.Kind() == reflect.Interface && !e.IsNil() {
				e = e.Elem()
			}
			if e.Kind() == reflect.String {
				addRef(join(path, k), k, e.String(), out)
			} else {
				walkRefs(e, join(path, k), out)
			}
		}
	}
}

func addRef(path, name, value string, out *[]SecretRef) {
	if value == "" || outputFiles[name] {
		return
	}
	switch {
	case strings.HasSuffix(name, "_env"):
		*out = append(*out, SecretRef{Path: path, Ref: secretref.Ref{Env: value}})
	case strings.HasSuffix(name, "_file"):
		*out = append(*out, SecretRef{Path: path, Ref: secretref.Ref{File: value}})
	}
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}
