package config

import (
	"strings"
	"testing"
)

type retiredCfg struct {
	URL     string `koanf:"url"`
	Timeout int    `koanf:"timeout"`
}

func (retiredCfg) RetiredFields() map[string]string {
	return map[string]string{"max_attempts": "retries are owned by the outbox; remove it"}
}

// A retired field is reported with its path and the struct's explanation,
// beside every other problem of the same pass.
func TestDecodeRetiredField(t *testing.T) {
	var c retiredCfg
	err := Decode(map[string]any{"url": "https://h", "max_attempts": 3, "timout": 1}, &c, "notifiers[1]")
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"notifiers[1].max_attempts: no longer supported: retries are owned by the outbox; remove it",
		"notifiers[1].timout: unknown field (known: timeout, url)",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v\nwant %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "max_attempts: unknown field") {
		t.Errorf("retired field reported as unknown: %v", err)
	}
	if c.URL != "https://h" {
		t.Errorf("known fields not decoded: %+v", c)
	}
}
