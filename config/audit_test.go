package config

import (
	"strings"
	"testing"
	"time"
)

func TestAuditSection(t *testing.T) {
	tests := map[string]struct {
		yaml     string
		want     []string // problems; none: valid
		warnings int
	}{
		"unset: valid, but unkeyed and said so": {yaml: "", warnings: 1},
		"keyed with checkpoints": {yaml: `
audit:
  key_id: "2026-12"
  key_env: REKEY_AUDIT_KEY
  keys: [{id: "2026-06", key_file: /etc/rekey/audit-2026-06.key}]
  checkpoints_dir: /var/lib/rekey/checkpoints
  checkpoint_interval: 1m
  signing_key_file: /etc/rekey/audit-signing.pem
`},
		"every problem at once": {yaml: `
audit:
  key_env: K
  key_file: /k
  keys:
    - {id: "Bad Id"}
    - {id: "dup", key_env: A}
    - {id: "dup", key_env: B}
  checkpoints_dir: /c
  checkpoint_interval: 10ms
`, want: []string{
			"audit.key_id: required with a key",
			"audit.key_env: set only one of key_env and key_file",
			`audit.keys[0].id: "Bad Id" must be lowercase`,
			"audit.keys[0].key_env: required (or key_file)",
			`audit.keys[2].id: duplicate audit key id "dup" (also audit.keys[1])`,
			"audit.signing_key_env: required with checkpoints_dir",
			"audit.checkpoint_interval: must be at least 1s",
		}},
		"signing key without a directory": {yaml: "audit: {signing_key_env: S}\n", want: []string{"audit.checkpoints_dir: required with a signing key"}, warnings: 1},
		"key id without a key":            {yaml: "audit: {key_id: a}\n", want: []string{"audit.key_env: required with key_id"}, warnings: 1},
		"unknown field":                   {yaml: "audit: {key: x}\n", want: []string{"audit.key"}, warnings: 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, err := Parse([]byte(base + tc.yaml))
			var all string
			if err != nil {
				all = err.Error() + "\n"
			}
			if cfg != nil {
				all += cfg.Validate(known).Error()
			}
			if len(tc.want) == 0 && all != "" {
				t.Fatalf("unexpected problems:\n%s", all)
			}
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("missing %q in:\n%s", w, all)
				}
			}
			if cfg != nil && len(cfg.Warnings()) != tc.warnings {
				t.Errorf("warnings = %q, want %d", cfg.Warnings(), tc.warnings)
			}
		})
	}
	cfg, err := Parse([]byte(base))
	if err != nil || cfg.Audit.CheckpointInterval != 5*time.Minute {
		t.Fatalf("checkpoint_interval default: %v %v", cfg.Audit.CheckpointInterval, err)
	}
}
