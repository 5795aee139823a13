package layout

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestModuleLayout checks every package of the module against the rules.
func TestModuleLayout(t *testing.T) {
	module, pkgs := listModule(t)
	// The rules are only as good as the list: make sure it holds the core
	// and adapters of every family before trusting an empty result.
	seen := map[string]bool{}
	for _, p := range pkgs {
		if rel, ok := relative(module, p.ImportPath); ok {
			seen[strings.Split(rel, "/")[0]] = true
		}
	}
	for _, top := range append([]string{"rotator", "app"}, families...) {
		if !seen[top] {
			t.Fatalf("go list found no package under %s/ in %d packages: the listing is broken", top, len(pkgs))
		}
	}
	for _, v := range Check(module, pkgs) {
		t.Error(v)
	}
}

// listModule runs `go list -json ./...` at the module root.
func listModule(t *testing.T) (module string, pkgs []Package) {
	t.Helper()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	if root == "." || root == "" {
		t.Fatal("go env GOMOD: not inside a module")
	}
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports,Module,Error", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list ./... in %s: %v\n%s", root, err, stderr.String())
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			Package
			Module *struct{ Path string }
			Error  *struct{ Err string }
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		if p.Error != nil {
			t.Fatalf("go list: %s: %s", p.ImportPath, p.Error.Err)
		}
		if p.Module != nil {
			module = p.Module.Path
		}
		pkgs = append(pkgs, p.Package)
	}
	if module == "" || len(pkgs) == 0 {
		t.Fatalf("go list in %s listed no package of a module", root)
	}
	return module, pkgs
}

// TestCheck runs the rules over synthetic package lists, so that the rule
// logic is proven to catch each kind of outward import without editing the
// product.
func TestCheck(t *testing.T) {
	const m = "example.com/mod"
	pkg := func(rel string, imports ...string) Package {
		p := Package{ImportPath: m + "/" + rel}
		for _, i := range imports {
			if !strings.Contains(i, ".") { // a path of the module
				i = m + "/" + i
			}
			p.Imports = append(p.Imports, i)
		}
		return p
	}
	bad := func(rel, imp, rule string) Violation {
		v := Violation{Package: m + "/" + rel, Rule: rule}
		if imp != "" {
			v.Import = m + "/" + imp
		}
		return v
	}
	tests := map[string]struct {
		pkgs []Package
		want []Violation
	}{
		"today's layout passes": {pkgs: []Package{
			pkg("rotator", "golang.org/x/sync/errgroup"),
			pkg("rotator/slots", "rotator"),
			pkg("internal/secretref", "rotator"),
			pkg("sinks/vault", "rotator", "rotator/slots", "internal/secretref", "github.com/hashicorp/vault/api"),
			pkg("sinks/sinktest", "rotator"),
			pkg("store/sqlstore", "rotator"),
			pkg("store/sqlstore/storetest", "rotator", "store/sqlstore"),
			pkg("store/sqlite", "store/sqlstore"),
			pkg("issuers/internal/probe", "issuers/internal/tmpl", "rotator"),
			pkg("issuers/http", "issuers/internal/probe", "internal/secretref", "rotator"),
			pkg("webhooks/internal/webhooktest", "rotator"),
			pkg("policies", "rotator"),
			pkg("config"),
			pkg("app", "config", "rotator", "sinks/vault", "store/sqlite", "policies"),
			pkg("cmd/rekey", "app", "webhooks/scanners"),
			pkg("testing/cmd/rekey-loadgen", "internal/secretref", "testing/kubeadapt"),
		}},
		"rotator imports an adapter": {
			pkgs: []Package{pkg("rotator", "sinks/file")},
			want: []Violation{bad("rotator", "sinks/file", RuleCore)},
		},
		"rotator imports the package beside it": {
			pkgs: []Package{pkg("rotator", "rotator/slots")},
			want: []Violation{bad("rotator", "rotator/slots", RuleCore)},
		},
		"rotator imports a helper": {
			pkgs: []Package{pkg("rotator", "internal/httpx")},
			want: []Violation{bad("rotator", "internal/httpx", RuleCore)},
		},
		"the package beside the core imports an adapter or a helper": {
			pkgs: []Package{pkg("rotator/slots", "rotator", "sinks/vault", "internal/httpx")},
			want: []Violation{
				bad("rotator/slots", "sinks/vault", RuleBeside),
				bad("rotator/slots", "internal/httpx", RuleBeside),
			},
		},
		"a helper imports an adapter": {
			pkgs: []Package{pkg("internal/secretref", "rotator", "issuers/http")},
			want: []Violation{bad("internal/secretref", "issuers/http", RuleInternal)},
		},
		"an adapter imports another of its family": {
			pkgs: []Package{pkg("sinks/vault", "rotator", "sinks/file")},
			want: []Violation{bad("sinks/vault", "sinks/file", RuleAdapter)},
		},
		"an adapter imports another adapter's subpackage": {
			pkgs: []Package{pkg("store/postgres", "store/sqlite/internal")},
			want: []Violation{bad("store/postgres", "store/sqlite/internal", RuleAdapter)},
		},
		"an adapter imports another family": {
			pkgs: []Package{pkg("notifiers/slack", "webhooks/internal/inbound", "issuers/random")},
			want: []Violation{
				bad("notifiers/slack", "webhooks/internal/inbound", RuleFamily),
				bad("notifiers/slack", "issuers/random", RuleFamily),
			},
		},
		"an adapter imports the policies": {
			pkgs: []Package{pkg("traffic/prometheus", "policies")},
			want: []Violation{bad("traffic/prometheus", "policies", RuleFamily)},
		},
		"an adapter reaches outward": {
			pkgs: []Package{pkg("sinks/file", "app", "config")},
			want: []Violation{bad("sinks/file", "app", RuleOutward), bad("sinks/file", "config", RuleOutward)},
		},
		"config imports an adapter": {
			pkgs: []Package{pkg("config", "sinks/vault")},
			want: []Violation{bad("config", "sinks/vault", RuleWiring)},
		},
		"product code imports a test server": {
			pkgs: []Package{pkg("app", "testing/testenv"), pkg("sinks/vault", "testing/kubeadapt"), pkg("rotator", "testing/testenv")},
			want: []Violation{
				bad("app", "testing/testenv", RuleTesting),
				bad("sinks/vault", "testing/kubeadapt", RuleTesting),
				bad("rotator", "testing/testenv", RuleTesting),
			},
		},
		"a test kit may use a test server": {
			pkgs: []Package{pkg("sinks/sinktest", "rotator", "testing/testenv")},
		},
		"product code imports a test kit": {
			pkgs: []Package{pkg("app", "sinks/sinktest"), pkg("store/sqlite", "store/sqlstore/storetest")},
			want: []Violation{
				bad("app", "sinks/sinktest", RuleTestKit),
				bad("store/sqlite", "store/sqlstore/storetest", RuleTestKit),
			},
		},
		"a package outside the layout": {
			pkgs: []Package{pkg("gadgets", "rotator")},
			want: []Violation{bad("gadgets", "", RuleUnknown)},
		},
		"packages of other modules are not judged": {
			pkgs: []Package{{ImportPath: "example.com/other/rotator", Imports: []string{m + "/sinks/vault"}}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := Check(m, tc.pkgs)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Check:\n got  %v\n want %v", got, tc.want)
			}
		})
	}
}
