package config

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Decode decodes raw (a YAML mapping as loaded) into out strictly: a field
// out does not declare is an error naming its path and the known fields; an
// inline secret (`token` where `token_env` exists) gets a hint; durations
// accept days and weeks; a value of the wrong type names its path. All
// problems are reported, in one pass.
//
// It is a small reflective decoder rather than mapstructure because it must
// check unknown fields and report YAML paths in the same pass, and because
// a configuration with 100,000 keys must load in well under a second.
// Structs are described by `koanf` tags; `,squash` flattens an embedded
// struct and `,remain` collects the fields a struct does not declare. A
// struct that implements Retired names fields it no longer accepts: setting
// one is an error carrying the struct's explanation instead of "unknown
// field".
func Decode(raw map[string]any, out any, path string) error {
	v := reflect.ValueOf(out)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return fmt.Errorf("config: decode into %T: need a non-nil pointer", out)
	}
	var errs Errors
	decodeValue(raw, v.Elem(), &yamlPath{base: path}, &errs)
	return errs.Err()
}

// yamlPath is the path of a value being decoded, made into a string only
// when an error names it: 100,000 keys have a million fields, and almost
// never an error.
type yamlPath struct {
	parent *yamlPath
	base   string // the whole path, when parent is nil
	field  string // joined to the parent's path as join does, unless list
	list   bool   // the path is the parent's [index]
	index  int
}

func (p *yamlPath) String() string {
	if p.parent == nil {
		return p.base
	}
	if p.list {
		return p.parent.String() + "[" + strconv.Itoa(p.index) + "]"
	}
	return join(p.parent.String(), p.field)
}

var durationType = reflect.TypeFor[time.Duration]()

func decodeValue(raw any, v reflect.Value, path *yamlPath, errs *Errors) {
	if raw == nil {
		return // YAML null: keep the default
	}
	if v.Type() == durationType {
		d, err := durationHook(nil, durationType, raw)
		if err != nil {
			errs.Add(path.String(), "%v", err)
			return
		}
		v.SetInt(int64(d.(time.Duration)))
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		decodeValue(raw, v.Elem(), path, errs)
	case reflect.Struct:
		m, ok := raw.(map[string]any)
		if !ok {
			errs.Add(path.String(), "expected a mapping, got %s", describe(raw))
			return
		}
		decodeStruct(m, v, path, errs)
	case reflect.Slice:
		l, ok := raw.([]any)
		if !ok {
			errs.Add(path.String(), "expected a list, got %s", describe(raw))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(l), len(l))
		for i, x := range l {
			decodeValue(x, s.Index(i), &yamlPath{parent: path, list: true, index: i}, errs)
		}
		v.Set(s)
	case reflect.Map:
		m, ok := raw.(map[string]any)
		if !ok {
			errs.Add(path.String(), "expected a mapping, got %s", describe(raw))
			return
		}
		if v.Type().Key().Kind() != reflect.String {
			errs.Add(path.String(), "unsupported map key type %s", v.Type().Key())
			return
		}
		if v.IsNil() {
			v.Set(reflect.MakeMapWithSize(v.Type(), len(m)))
		}
		et := v.Type().Elem()
		for k, x := range m {
			if et.Kind() == reflect.Interface {
				v.SetMapIndex(reflect.ValueOf(k).Convert(v.Type().Key()), reflect.ValueOf(x))
				continue
			}
			e := reflect.New(et).Elem()
			decodeValue(x, e, &yamlPath{parent: path, field: k}, errs)
			v.SetMapIndex(reflect.ValueOf(k).Convert(v.Type().Key()), e)
		}
	case reflect.Interface:
		v.Set(reflect.ValueOf(raw))
	case reflect.String:
		switch x := raw.(type) {
		case string:
			v.SetString(x)
		case int, int64, float64, bool:
			v.SetString(fmt.Sprint(x))
		default:
			errs.Add(path.String(), "expected a string, got %s", describe(raw))
		}
	case reflect.Bool:
		switch x := raw.(type) {
		case bool:
			v.SetBool(x)
		case string:
			b, err := strconv.ParseBool(x)
			if err != nil {
				errs.Add(path.String(), "expected true or false, got another string")
				return
			}
			v.SetBool(b)
		default:
			errs.Add(path.String(), "expected true or false, got %s", describe(raw))
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		switch x := raw.(type) {
		case int:
			v.SetInt(int64(x))
		case int64:
			v.SetInt(x)
		case uint64:
			v.SetInt(int64(x))
		case float64:
			if x != float64(int64(x)) {
				errs.Add(path.String(), "expected a whole number, got %v", x)
				return
			}
			v.SetInt(int64(x))
		case string:
			n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
			if err != nil {
				errs.Add(path.String(), "expected a whole number, got a string that is not one")
				return
			}
			v.SetInt(n)
		default:
			errs.Add(path.String(), "expected a whole number, got %s", describe(raw))
		}
	case reflect.Float32, reflect.Float64:
		switch x := raw.(type) {
		case int:
			v.SetFloat(float64(x))
		case float64:
			v.SetFloat(x)
		case string:
			f, err := strconv.ParseFloat(x, 64)
			if err != nil {
				errs.Add(path.String(), "expected a number, got a string that is not one")
				return
			}
			v.SetFloat(f)
		default:
			errs.Add(path.String(), "expected a number, got %s", describe(raw))
		}
	default:
		errs.Add(path.String(), "unsupported configuration type %s", v.Type())
	}
}

func decodeStruct(m map[string]any, v reflect.Value, path *yamlPath, errs *Errors) {
	plan := planFor(v.Type())
	var rest map[string]any
	// Sorted keys: errors come out in a stable order.
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	if len(keys) > 1 {
		sort.Strings(keys)
	}
	for _, k := range keys {
		x := m[k]
		idx, ok := plan.fields[k]
		if !ok {
			if plan.remain != nil {
				if rest == nil {
					rest = map[string]any{}
				}
				rest[k] = x
				continue
			}
			errs.Add(join(path.String(), k), "%s", plan.unknown(k))
			continue
		}
		decodeValue(x, v.FieldByIndex(idx), &yamlPath{parent: path, field: k}, errs)
	}
	if plan.remain != nil && rest != nil {
		v.FieldByIndex(plan.remain).Set(reflect.ValueOf(rest))
	}
}

// Retired is implemented by a configuration struct that has dropped or
// moved fields: RetiredFields maps each old koanf name to what a user who
// still sets it must read (why it went, what to do instead). It is called
// on the zero value, once per type.
type Retired interface {
	RetiredFields() map[string]string
}

var retiredType = reflect.TypeFor[Retired]()

// structPlan is how a struct type decodes, computed once per type.
type structPlan struct {
	fields  map[string][]int // koanf name → field index path (through squashed embeds)
	remain  []int
	known   string
	retired map[string]string
}

var plans sync.Map // reflect.Type → *structPlan

func planFor(t reflect.Type) *structPlan {
	if p, ok := plans.Load(t); ok {
		return p.(*structPlan)
	}
	p := &structPlan{fields: map[string][]int{}}
	var walk func(t reflect.Type, prefix []int)
	walk = func(t reflect.Type, prefix []int) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			idx := append(append([]int{}, prefix...), i)
			name, opts, _ := strings.Cut(f.Tag.Get("koanf"), ",")
			switch {
			case strings.Contains(opts, "remain"):
				p.remain = idx
				continue
			case strings.Contains(opts, "squash"):
				walk(f.Type, idx)
				continue
			}
			if name == "-" || !f.IsExported() {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			p.fields[name] = idx
		}
	}
	walk(t, nil)
	names := make([]string, 0, len(p.fields))
	for n := range p.fields {
		names = append(names, n)
	}
	sort.Strings(names)
	p.known = strings.Join(names, ", ")
	if t.Implements(retiredType) {
		p.retired = reflect.Zero(t).Interface().(Retired).RetiredFields()
	}
	plans.Store(t, p)
	return p
}

func (p *structPlan) unknown(k string) string {
	if why, ok := p.retired[k]; ok {
		return "no longer supported: " + why
	}
	if _, ok := p.fields[k+"_env"]; ok {
		return "inline secrets are not allowed; use " + k + "_env or " + k + "_file"
	}
	return "unknown field (known: " + p.known + ")"
}

func describe(v any) string {
	switch v.(type) {
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		return "a string" // never echo a value: it might be a secret in the wrong place
	case bool:
		return "a boolean"
	case int, int64, uint64, float64:
		return "a number"
	}
	return fmt.Sprintf("a %T", v)
}
