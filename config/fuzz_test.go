package config

import (
	"strings"
	"testing"
)

// FuzzParse: any YAML document parses or fails without a panic, the same
// way twice, and a parsed configuration validates without a panic.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"daemon: {listen: 127.0.0.1:8080}\nstore: {type: sqlite, path: x.db}\n",
		"keys: [{name: a, issuer: i, sinks: [{sink: s, path: p}]}]\nissuers: [{name: i, type: random}]\n",
		"keys: {a: 1}\n", "daemon: [1, 2]\n", "defaults: {policies: {max_age: 3w}}\n", "a: &x [*x]\n",
		"keys: [{name: k, windows: [{days: [mon-fri], start: '09:00', end: '17:00', tz: Europe/Paris}]}]\n",
		"store: {type: postgres, dsn: postgres://u:p@h/db}\n", "daemon: {retry_base: -1s, poll_interval: 1y}\n",
	} {
		f.Add([]byte(s))
	}
	known := KnownTypes{FamilyIssuers: {"random"}, FamilySinks: {"file"}, FamilyNotifiers: {"log"}}
	f.Fuzz(func(t *testing.T, doc []byte) {
		if len(doc) > 16<<10 {
			return
		}
		cfg, err := Parse(doc)
		cfg2, err2 := Parse(doc)
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("two parses differ: %v / %v", err, err2)
		}
		if cfg != nil && cfg2 != nil {
			_ = cfg.Validate(known)
		}
	})
}

// FuzzDecodeNeverEchoesValues: whatever field a string value lands in —
// unknown, of the wrong type, an inline secret — the decoder's errors name
// the path and never quote the value, which may be a secret in the wrong
// place.
func FuzzDecodeNeverEchoesValues(f *testing.F) {
	f.Add("token", "ka_live_abc")
	f.Add("listen", "x")
	f.Add("max_age", "ninety days")
	f.Add("keys", "[1]")
	f.Add("dsn", "postgres://user:pw@h/db")
	f.Fuzz(func(t *testing.T, key, value string) {
		const mark = "S3CR"
		if strings.Contains(key, mark) || strings.Contains(strings.ToUpper(key), "S3CR") {
			return
		}
		value = mark + value
		raw := map[string]any{
			key:      value,
			"daemon": map[string]any{key: value, "listen": value, "poll_interval": value, "concurrency": value},
			"store":  map[string]any{key: value, "type": []any{value}},
			"keys": []any{
				map[string]any{"name": "k", key: value, "sinks": value, "owners": map[string]any{key: value},
					"policies": map[string]any{"max_age": value, key: value}, "drain": []any{value}},
				value,
			},
			"defaults": map[string]any{"windows": []any{map[string]any{key: value}}, "approval": map[string]any{"required": value}},
			"issuers":  []any{map[string]any{"name": value, "type": "random", key: value}},
		}
		cfg := defaults()
		err := Decode(raw, &cfg, "")
		if err != nil && strings.Contains(err.Error(), mark) {
			t.Fatalf("error quotes a value:\n%v", err)
		}
	})
}
