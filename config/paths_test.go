package config

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRelativePathsResolveAgainstTheConfigFile: loaded from another working
// directory, every relative path names a file beside the configuration,
// not one in the working directory; absolute paths, routes and sink
// targets are left alone.
func TestRelativePathsResolveAgainstTheConfigFile(t *testing.T) {
	confDir := t.TempDir()
	yaml := `
daemon:
  address_file: run/rekey.addr
  admin_address_file: run/admin.addr
  admin_listen: unix:run/admin.sock
  admin_token_file: secrets/admin-token
  metrics_token_file: /abs/metrics-token
  tls: {cert_file: tls/cert.pem, key_file: tls/key.pem}
store: {type: sqlite, path: data/rekey.db}
audit:
  checkpoints_dir: data/checkpoints
  signing_key_file: secrets/signing.pem
  key_id: k1
  key_file: secrets/audit-key
  keys: [{id: k0, key_file: secrets/old-key}]
issuers: [{name: rnd, type: random, ledger: ./data/ledger.json}]
sinks:
  - {name: files, type: file, dir: out/secrets}
  - {name: vault, type: vault, address: "https://vault:8200", mount: secret, auth: {token_file: secrets/vault-token}, ca_file: tls/ca.pem}
webhooks: [{name: exposure, type: exposure, path: /hooks/exposure, secret_file: secrets/hook}]
keys:
  - {name: a, issuer: rnd, sinks: [{sink: files, path: a.json}]}
`
	file := filepath.Join(confDir, "rekey.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	cfg, err := Load("../" + filepath.Base(filepath.Dir(file)) + "/rekey.yaml")
	if err != nil {
		t.Fatal(err)
	}
	in := func(p string) string { return filepath.Join(confDir, p) }
	for name, c := range map[string]struct{ got, want string }{
		"daemon.address_file":            {cfg.Daemon.AddressFile, in("run/rekey.addr")},
		"daemon.admin_address_file":      {cfg.Daemon.AdminAddressFile, in("run/admin.addr")},
		"daemon.admin_listen":            {cfg.Daemon.AdminListen, "unix:" + in("run/admin.sock")},
		"daemon.admin_token_file":        {cfg.Daemon.AdminTokenFile, in("secrets/admin-token")},
		"daemon.metrics_token_file":      {cfg.Daemon.MetricsTokenFile, "/abs/metrics-token"},
		"daemon.tls.cert_file":           {cfg.Daemon.TLS.CertFile, in("tls/cert.pem")},
		"daemon.tls.key_file":            {cfg.Daemon.TLS.KeyFile, in("tls/key.pem")},
		"store.path":                     {cfg.Store.Path, in("data/rekey.db")},
		"audit.checkpoints_dir":          {cfg.Audit.CheckpointsDir, in("data/checkpoints")},
		"audit.signing_key_file":         {cfg.Audit.SigningKeyFile, in("secrets/signing.pem")},
		"audit.key_file":                 {cfg.Audit.KeyFile, in("secrets/audit-key")},
		"audit.keys[0].key_file":         {cfg.Audit.Keys[0].KeyFile, in("secrets/old-key")},
		"issuers[0].ledger":              {cfg.Issuers[0].Settings["ledger"].(string), in("data/ledger.json")},
		"sinks[0].dir":                   {cfg.Sinks[0].Settings["dir"].(string), in("out/secrets")},
		"sinks[1].ca_file":               {cfg.Sinks[1].Settings["ca_file"].(string), in("tls/ca.pem")},
		"sinks[1].auth.token_file":       {cfg.Sinks[1].Settings["auth"].(map[string]any)["token_file"].(string), in("secrets/vault-token")},
		"sinks[1].mount (not a path)":    {cfg.Sinks[1].Settings["mount"].(string), "secret"},
		"webhooks[0].path (a route)":     {cfg.Webhooks[0].Settings["path"].(string), "/hooks/exposure"},
		"webhooks[0].secret_file":        {cfg.Webhooks[0].Settings["secret_file"].(string), in("secrets/hook")},
		"keys[0].sinks[0].path (target)": {cfg.Keys[0].Sinks[0].Path, "a.json"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", name, c.got, c.want)
		}
	}
}

// TestDefaultStorePathStaysInTheWorkingDirectory: a default that is not
// written in the file is not rewritten (a container's WORKDIR holds the
// state), and Parse (no file) resolves nothing.
func TestDefaultStorePathStaysInTheWorkingDirectory(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "rekey.yaml")
	if err := os.WriteFile(file, []byte("issuers: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Store.Path != "./data/rekey.db" {
		t.Fatalf("store.path = %q, want the default as written", cfg.Store.Path)
	}
	cfg, err = Parse([]byte("store: {path: data/x.db}\n"))
	if err != nil || cfg.Store.Path != "data/x.db" {
		t.Fatalf("Parse: %v %q", err, cfg.Store.Path)
	}
}
