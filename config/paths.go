package config

import (
	"path/filepath"
	"strings"
)

// resolvePaths rewrites every relative filesystem path in the raw
// configuration so that it is relative to base, the directory of the
// configuration file, and not to the working directory of whoever runs
// rekey: `rekey status -c /etc/rekey/rekey.yaml` from any directory reads
// the store the daemon writes.
//
// Path-valued fields are recognised by name, in every section but keys,
// defaults and auth (which hold no file names): store.path, any field named
// dir or ledger, any field ending in _file or _dir (token and secret files,
// TLS certificates, audit keys and checkpoints, address files…), at any
// depth (adapter settings, an adapter's auth block, audit.keys), and
// daemon.admin_listen when it is a unix socket. Values set by environment
// overrides are resolved the same way. Defaults that are not written in the
// file (store.path's ./data/rekey.db) stay relative to the working
// directory, as a container's WORKDIR expects.
func resolvePaths(raw map[string]any, base string) {
	if base == "" {
		return
	}
	for section, v := range raw {
		switch section {
		case "keys", "defaults", "auth":
			continue
		}
		walkPaths(v, base, section)
	}
	if st, ok := raw["store"].(map[string]any); ok {
		if p, ok := st["path"].(string); ok && p != ":memory:" && !strings.HasPrefix(p, "file:") {
			st["path"] = absolute(p, base)
		}
	}
	if d, ok := raw["daemon"].(map[string]any); ok {
		if a, ok := d["admin_listen"].(string); ok {
			if sock, isUnix := strings.CutPrefix(a, "unix:"); isUnix && sock != "" {
				d["admin_listen"] = "unix:" + absolute(sock, base)
			}
		}
	}
}

func walkPaths(v any, base, section string) {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if s, ok := x.(string); ok && pathField(k) {
				t[k] = absolute(s, base)
				continue
			}
			walkPaths(x, base, section)
		}
	case []any:
		for _, x := range t {
			walkPaths(x, base, section)
		}
	}
}

// pathField reports whether a field of this name holds a filesystem path.
func pathField(name string) bool {
	return name == "dir" || name == "ledger" || strings.HasSuffix(name, "_file") || strings.HasSuffix(name, "_dir")
}

func absolute(p, base string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(base, p)
}
