// Package layout holds the import rules of DESIGN.md "Layout" — dependencies
// point inward — and a test that checks them against `go list` of the whole
// module, so that CI fails when a package reaches outward:
//
//   - rotator, the core, imports no other package of this module; the
//     packages beside it (rotator/slots) import only rotator;
//   - internal/… helpers import only rotator and internal/…;
//   - an adapter (issuers/…, sinks/…, notifiers/…, traffic/…, webhooks/…,
//     store/…, policies) imports rotator, internal/… and its own family's
//     shared helpers (<family>/internal/…, and the packages in shared), never
//     another adapter nor another family;
//   - only app and cmd/… import adapters;
//   - test kits (a package named …test, such as sinks/sinktest) and the
//     test servers and dev binaries under testing/ are imported only by
//     _test.go files, never by the product.
//
// Only non-test imports are checked: a test may import whatever it runs
// against (a real store, a test server, the conformance suite).
package layout

import (
	"fmt"
	"slices"
	"strings"
)

// Rules a package can break; each is the message a violation carries.
const (
	RuleCore     = "rotator imports no other package of this module"
	RuleBeside   = "a package beside the core (rotator/…) imports only rotator and rotator/…, never the other way round"
	RuleInternal = "internal/… helpers import only rotator and internal/…"
	RuleAdapter  = "an adapter imports rotator, internal/… and its family's shared helpers, never another adapter"
	RuleFamily   = "an adapter never imports another adapter family"
	RuleOutward  = "an adapter imports rotator and internal/…, never app, config, cmd or the like"
	RuleWiring   = "only app and cmd/… import adapters"
	RuleTesting  = "product packages never import testing/… (only _test.go files and test kits may)"
	RuleTestKit  = "a test kit is imported only by _test.go files"
	RuleUnknown  = "the package is outside the layout: place it in a known tree or add its tree to testing/layout"
)

// families are the adapter families. The package directly below a family
// is one adapter (policies is one adapter by itself); the packages below
// an adapter belong to it.
var families = []string{"issuers", "sinks", "notifiers", "traffic", "webhooks", "store", "policies"}

// shared are a family's helper packages other than <family>/internal/…,
// which every adapter of that family may import, and why each is one.
var shared = map[string]string{
	"store/sqlstore": "the SQL implementation that store/sqlite and store/postgres only configure (dialect, driver)",
}

// others are the trees that are neither core, adapter, helper nor wiring:
// they may import rotator and internal/… but no adapter. (auth: who may
// do what through the admin API; adapters never import it, app does.)
var others = []string{"config", "auth", "bench", "e2e"}

// Package is the part of `go list -json` the rules read.
type Package struct {
	ImportPath string
	Imports    []string // non-test imports, the ones checked
}

// Violation is one forbidden import.
type Violation struct {
	Package string // import path of the importer
	Import  string // what it must not import
	Rule    string
}

func (v Violation) String() string {
	if v.Import == "" {
		return fmt.Sprintf("%s: %s", v.Package, v.Rule)
	}
	return fmt.Sprintf("%s imports %s: %s", v.Package, v.Import, v.Rule)
}

// class is where a package sits in the layout.
type class int

const (
	unknown  class = iota
	core           // rotator
	beside         // rotator/…
	helper         // internal/…
	adapter        // <family>/…
	wiring         // app, cmd/…
	testTree       // testing/…
	other          // config, bench, e2e
)

// place is a package's position: its class, and for an adapter its family
// and unit (the adapter, <family>/internal, or a shared helper it belongs to).
type place struct {
	class        class
	family, unit string
	kit          bool // a test kit: its last element ends in "test"
}

// locate places rel, a package path relative to the module.
func locate(rel string) place {
	parts := strings.Split(rel, "/")
	p := place{kit: strings.HasSuffix(parts[len(parts)-1], "test") && len(parts) > 1}
	switch top := parts[0]; {
	case rel == "rotator":
		p.class = core
	case top == "rotator":
		p.class = beside
	case top == "internal":
		p.class = helper
	case top == "app" || top == "cmd":
		p.class = wiring
	case top == "testing":
		p.class = testTree
	case slices.Contains(others, top):
		p.class = other
	case slices.Contains(families, top):
		p.class, p.family, p.unit = adapter, top, top
		if len(parts) > 1 {
			p.unit = top + "/" + parts[1]
		}
	}
	return p
}

// Check returns every violation of the rules by pkgs, packages of module.
// Imports outside the module (standard library, third parties) are not
// judged here.
func Check(module string, pkgs []Package) []Violation {
	var out []Violation
	for _, pkg := range pkgs {
		rel, ok := relative(module, pkg.ImportPath)
		if !ok {
			continue
		}
		from := locate(rel)
		if from.class == unknown {
			out = append(out, Violation{Package: pkg.ImportPath, Rule: RuleUnknown})
			continue
		}
		for _, imp := range pkg.Imports {
			to, ok := relative(module, imp)
			if !ok {
				continue
			}
			if rule := judge(from, locate(to)); rule != "" {
				out = append(out, Violation{Package: pkg.ImportPath, Import: imp, Rule: rule})
			}
		}
	}
	return out
}

// judge returns the rule a non-test import from → to breaks, or "".
func judge(from, to place) string {
	inward := to.class == core || to.class == beside || to.class == helper
	switch {
	case from.class == testTree:
		return "" // test servers and dev binaries may use the product
	case to.class == testTree && !from.kit:
		return RuleTesting
	case to.kit && !from.kit:
		return RuleTestKit
	}
	switch from.class {
	case core:
		return RuleCore
	case beside:
		if to.class != core && to.class != beside {
			return RuleBeside
		}
	case helper:
		if to.class != core && to.class != beside && to.class != helper {
			return RuleInternal
		}
	case adapter:
		switch {
		case inward:
		case to.class == testTree: // a test kit's, allowed above
		case to.class != adapter:
			return RuleOutward
		case to.family != from.family:
			return RuleFamily
		case to.unit != from.unit && to.unit != from.family+"/internal" && shared[to.unit] == "":
			return RuleAdapter
		}
	case other:
		if to.class == adapter {
			return RuleWiring
		}
	}
	return ""
}

// relative strips the module path from path; ok is false for a path
// outside the module.
func relative(module, path string) (rel string, ok bool) {
	if path == module {
		return ".", true
	}
	rel, ok = strings.CutPrefix(path, module+"/")
	return rel, ok
}
