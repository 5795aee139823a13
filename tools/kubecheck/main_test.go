package main

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := map[string]struct {
		doc  string
		want string // "" = valid; else a substring of the error
	}{
		"valid service": {doc: `
apiVersion: v1
kind: Service
metadata: {name: a}
spec:
  ports: [{name: web, port: 80, targetPort: web}]
`},
		"unknown field": {doc: `
apiVersion: v1
kind: Service
metadata: {name: a}
spec:
  portz: []
`, want: `unknown field "spec.portz"`},
		"misplaced field": {doc: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: a}
spec:
  template:
    spec:
      containers: [{name: c, image: i, readOnlyRootFilesystem: true}]
`, want: `unknown field "spec.template.spec.containers[0].readOnlyRootFilesystem"`},
		"wrong type": {doc: `
apiVersion: v1
kind: Service
metadata: {name: a}
spec:
  ports: [{port: "eighty"}]
`, want: "port"},
		"unknown kind": {doc: `
apiVersion: example.com/v1
kind: Widget
metadata: {name: a}
`, want: "no kind"},
		"servicemonitor field": {doc: `
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: a}
spec:
  selector: {}
  endpoints: [{port: admin, intervall: 30s}]
`, want: `unknown field "spec.endpoints[0].intervall"`},
		"duplicate field": {doc: `
apiVersion: v1
kind: ConfigMap
metadata: {name: a}
data: {a: "1"}
data: {b: "2"}
`, want: `key "data" already set`},
	}
	s := newScheme()
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, errs := Check(s, []byte("---\n# Source: x\n"+tc.doc))
			switch {
			case tc.want == "" && len(errs) > 0:
				t.Fatalf("want valid, got %v", errs)
			case tc.want != "" && len(errs) == 0:
				t.Fatalf("want an error containing %q, got none", tc.want)
			case tc.want != "" && !strings.Contains(errs[0].Error(), tc.want):
				t.Fatalf("want an error containing %q, got %v", tc.want, errs[0])
			}
		})
	}
}
