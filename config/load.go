package config

import (
	"fmt"
	"os"
	"strings"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
)

// EnvPrefix starts every environment override. Nesting uses a double
// underscore: REKEY_DAEMON__LISTEN=0.0.0.0:8080 sets daemon.listen. Only the
// sections daemon, store and defaults can be overridden (lists cannot be
// addressed by name); other REKEY_* variables are ignored.
const EnvPrefix = "REKEY_"

var envSections = map[string]bool{"daemon": true, "store": true, "defaults": true}

// Load reads path, applies environment overrides and decodes strictly. It
// does not validate cross-references; call Validate for that. On decoding
// errors (config.Errors) it also returns what could be decoded.
//
// It never prints the loaded configuration (it may name secret files, and
// adapters' settings are opaque here).
func Load(path string) (*Config, error) {
	k := koanf.New(".")
	if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
		if os.IsNotExist(unwrapAll(err)) {
			return nil, fmt.Errorf("config file %s does not exist", path)
		}
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	return decodeKoanf(k)
}

// Parse decodes YAML bytes (for tests and `validate -`).
func Parse(b []byte) (*Config, error) {
	k := koanf.New(".")
	if err := k.Load(rawProvider(b), yaml.Parser()); err != nil {
		return nil, fmt.Errorf("parse config: %w", err)
	}
	return decodeKoanf(k)
}

func decodeKoanf(k *koanf.Koanf) (*Config, error) {
	if err := k.Load(env.Provider(".", env.Opt{
		Prefix: EnvPrefix,
		TransformFunc: func(key, v string) (string, any) {
			key = strings.ToLower(strings.TrimPrefix(key, EnvPrefix))
			section, _, _ := strings.Cut(key, "__")
			if !envSections[section] || !strings.Contains(key, "__") {
				return "", nil
			}
			return strings.ReplaceAll(key, "__", "."), v
		},
	}), nil); err != nil {
		return nil, fmt.Errorf("environment overrides: %w", err)
	}
	cfg := defaults()
	if err := Decode(k.Raw(), &cfg, ""); err != nil {
		// The partly decoded configuration comes back too, so that
		// `rekey validate` can report cross-reference problems as well.
		return &cfg, err
	}
	return &cfg, nil
}

type rawBytes []byte

func (r rawBytes) ReadBytes() ([]byte, error) { return r, nil }
func (r rawBytes) Read() (map[string]any, error) {
	return nil, fmt.Errorf("raw provider does not support Read")
}

func rawProvider(b []byte) rawBytes { return rawBytes(b) }

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		next := u.Unwrap()
		if next == nil {
			return err
		}
		err = next
	}
}
