package deploy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// helmBin finds the helm that scripts/ci-deps.sh builds: $REKEY_HELM_BIN,
// or ~/.cache/rekey/helm-<the version tools/helm/go.mod pins>.
func helmBin(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("REKEY_HELM_BIN"); p != "" {
		return p
	}
	m := regexp.MustCompile(`(?m)^\s*helm\.sh/helm/v3 (v\S+)`).FindStringSubmatch(read(t, "tools/helm/go.mod"))
	if m == nil {
		t.Fatal("tools/helm/go.mod pins no helm.sh/helm/v3 version")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(home, ".cache", "rekey", "helm-"+m[1])
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("helm %s not found at %s (run scripts/ci-deps.sh, or set $REKEY_HELM_BIN): %v", m[1], p, err)
	}
	return p
}

type object = map[string]any

// render runs helm template on the chart with args and returns its objects
// by "Kind/name".
func render(t *testing.T, args ...string) (map[string]object, error) {
	t.Helper()
	cmd := exec.Command(helmBin(t), append([]string{"template", "rekey", filepath.Join(root(t), "deploy/helm/rekey")}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, errors.New(strings.TrimSpace(stderr.String()))
	}
	objs := map[string]object{}
	dec := yaml.NewDecoder(bytes.NewReader(out))
	for {
		var o object
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if o == nil {
			continue
		}
		objs[get(o, "kind").(string)+"/"+get(o, "metadata", "name").(string)] = o
	}
	return objs, nil
}

// get walks maps by key and lists by int index; nil if absent.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func env(container any) map[string]any {
	out := map[string]any{}
	for _, e := range get(container, "env").([]any) {
		if v := get(e, "value"); v != nil {
			out[get(e, "name").(string)] = v
		} else {
			out[get(e, "name").(string)] = get(e, "valueFrom")
		}
	}
	return out
}

// TestChartRenders renders the chart with its two value sets and checks
// what the chart promises beyond schema validity (tools/kubecheck checks
// that): non-root and locked down, probes, listeners beyond loopback, the
// admin Service internal, the store's wiring.
func TestChartRenders(t *testing.T) {
	tests := map[string]struct {
		args     []string
		postgres bool
		split    bool
	}{
		"default values":                {split: true},
		"one listener (an older rekey)": {args: []string{"--set", "listen.separateAdminListener=false"}},
		"postgres":                      {args: []string{"-f", filepath.Join(root(t), "deploy/helm/rekey/ci/postgres-values.yaml")}, postgres: true, split: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			objs, err := render(t, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			d := objs["Deployment/rekey"]
			if d == nil {
				t.Fatalf("no Deployment/rekey among %d objects", len(objs))
			}
			pod := get(d, "spec", "template", "spec")
			c := get(pod, "containers", 0)
			for path, want := range map[string]any{
				"pod runAsNonRoot":         get(pod, "securityContext", "runAsNonRoot") == true,
				"pod seccomp":              get(pod, "securityContext", "seccompProfile", "type") == "RuntimeDefault",
				"readOnlyRootFilesystem":   get(c, "securityContext", "readOnlyRootFilesystem") == true,
				"allowPrivilegeEscalation": get(c, "securityContext", "allowPrivilegeEscalation") == false,
				"drop ALL":                 get(c, "securityContext", "capabilities", "drop", 0) == "ALL",
				"no service account token": get(pod, "automountServiceAccountToken") == false,
				"liveness /healthz":        get(c, "livenessProbe", "httpGet", "path") == "/healthz",
				"readiness /readyz":        get(c, "readinessProbe", "httpGet", "path") == "/readyz",
				"admin Service ClusterIP":  get(objs["Service/rekey-admin"], "spec", "type") == "ClusterIP",
			} {
				if want != true {
					t.Errorf("%s: not as promised", path)
				}
			}
			e := env(c)
			if l, _ := e["REKEY_DAEMON__LISTEN"].(string); !strings.HasPrefix(l, "0.0.0.0:") {
				t.Errorf("REKEY_DAEMON__LISTEN = %v, want 0.0.0.0:…", e["REKEY_DAEMON__LISTEN"])
			}
			if _, ok := e["REKEY_DAEMON__ADMIN_LISTEN"]; ok != tc.split {
				t.Errorf("REKEY_DAEMON__ADMIN_LISTEN set = %v, want %v", ok, tc.split)
			}
			wantTarget := "webhooks"
			if tc.split {
				wantTarget = "admin"
			}
			if got := get(objs["Service/rekey-admin"], "spec", "ports", 0, "targetPort"); got != wantTarget {
				t.Errorf("admin Service targets %v, want %s", got, wantTarget)
			}
			cfg := get(objs["ConfigMap/rekey"], "data", "rekey.yaml").(string)
			_, pvc := objs["PersistentVolumeClaim/rekey"]
			if tc.postgres {
				if pvc || get(d, "spec", "replicas") != 2 {
					t.Errorf("postgres: want no PVC and 2 replicas, got PVC %v, replicas %v", pvc, get(d, "spec", "replicas"))
				}
				if get(e["REKEY_POSTGRES_DSN"], "secretKeyRef", "name") != "rekey-postgres" || !strings.Contains(cfg, "dsn_env: REKEY_POSTGRES_DSN") {
					t.Errorf("postgres: the DSN should come from the Secret through dsn_env; env %v, config:\n%s", e["REKEY_POSTGRES_DSN"], cfg)
				}
			} else {
				if !pvc || get(d, "spec", "replicas") != 1 || get(d, "spec", "strategy", "type") != "Recreate" {
					t.Errorf("sqlite: want a PVC, 1 replica, Recreate; got PVC %v, replicas %v, strategy %v", pvc, get(d, "spec", "replicas"), get(d, "spec", "strategy"))
				}
				if !strings.Contains(cfg, "path: /var/lib/rekey/rekey.db") {
					t.Errorf("sqlite: the database should be on the volume:\n%s", cfg)
				}
			}
		})
	}
}

// TestChartRefusesLostSettings: settings the chart owns, set in
// values.config, would be silently overridden, and a misspelt value would
// be silently ignored (values.schema.json); the chart refuses them.
func TestChartRefusesLostSettings(t *testing.T) {
	for name, args := range map[string][]string{
		"config.daemon.listen":     {"--set", "config.daemon.listen=127.0.0.1:9"},
		"config.store":             {"--set", "config.store.type=sqlite"},
		"postgres without a DSN":   {"--set", "store.type=postgres"},
		"unknown store type":       {"--set", "store.type=mysql"},
		"admin probe, 1 listener":  {"--set", "probes.port=admin", "--set", "listen.separateAdminListener=false"},
		"secret env without name":  {"--set", "secrets.env.A=b"},
		"secret mount without one": {"--set", "secrets.mount=true"},
		"misspelt value":           {"--set", "listen.separateAdminListner=true"},
		"public admin Service":     {"--set", "service.admin.type=LoadBalancer"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := render(t, args...); err == nil {
				t.Fatalf("helm template %v succeeded; want a refusal", args)
			} else {
				t.Logf("refused: %v", err)
			}
		})
	}
}
