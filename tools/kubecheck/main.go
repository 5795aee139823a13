// Command kubecheck checks rendered Kubernetes manifests (helm template's
// output) offline, as strictly as the API server's schema would: each
// document is decoded into its Go API type with unknown and duplicate
// fields as errors, then round-tripped, so a misspelt or misplaced field,
// a wrong type or an unknown kind fails. It knows the built-in kinds
// (client-go's scheme) and the Prometheus Operator's ServiceMonitor and
// PrometheusRule.
//
// Why not kubeconform: it downloads JSON schemas at run time, and CI here
// cannot reach the internet; kubectl --dry-run=client without a server
// checks little more than YAML syntax.
//
//	kubecheck [-config-out FILE] MANIFEST.yaml...
//
// With -config-out, the rekey.yaml of the chart's ConfigMap is written to
// FILE for `rekey validate`.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
)

func main() {
	configOut := flag.String("config-out", "", "write the ConfigMap's rekey.yaml here")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: kubecheck [-config-out FILE] MANIFEST.yaml...")
		os.Exit(2)
	}
	s := newScheme()
	failed := false
	for _, path := range flag.Args() {
		b, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		objs, errs := Check(s, b)
		for _, err := range errs {
			fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
			failed = true
		}
		for _, o := range objs {
			fmt.Printf("%s: ok %s %s\n", path, o.GetObjectKind().GroupVersionKind().Kind, name(o))
			if cm, ok := o.(*corev1.ConfigMap); ok && *configOut != "" {
				if cfg, ok := cm.Data["rekey.yaml"]; ok {
					if err := os.WriteFile(*configOut, []byte(cfg), 0o600); err != nil {
						fmt.Fprintln(os.Stderr, err)
						os.Exit(1)
					}
				}
			}
		}
	}
	if failed {
		os.Exit(1)
	}
}

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := scheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := monitoringv1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

func name(o runtime.Object) string {
	if m, ok := o.(interface{ GetName() string }); ok {
		return m.GetName()
	}
	return ""
}

// Check decodes every document of a multi-document YAML stream strictly.
// Empty documents are skipped; a stream with no object is an error.
func Check(s *runtime.Scheme, manifests []byte) ([]runtime.Object, []error) {
	strict := json.NewSerializerWithOptions(json.DefaultMetaFactory, s, s,
		json.SerializerOptions{Yaml: true, Strict: true})
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(manifests)))
	var objs []runtime.Object
	var errs []error
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("document %d: %w", i, err))
			break
		}
		if isEmpty(doc) {
			continue
		}
		obj, gvk, err := strict.Decode(doc, nil, nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("document %d (%s): %w", i, source(doc), err))
			continue
		}
		if gvk == nil || gvk.Empty() {
			errs = append(errs, fmt.Errorf("document %d (%s): no apiVersion/kind", i, source(doc)))
			continue
		}
		obj.GetObjectKind().SetGroupVersionKind(*gvk)
		objs = append(objs, obj)
	}
	if len(objs) == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("no Kubernetes object found"))
	}
	return objs, errs
}

// source is helm template's "# Source: chart/templates/x.yaml" line.
func source(doc []byte) string {
	for line := range strings.SplitSeq(string(doc), "\n") {
		if rest, ok := strings.CutPrefix(line, "# Source: "); ok {
			return rest
		}
	}
	return "no source line"
}

func isEmpty(doc []byte) bool {
	for line := range strings.SplitSeq(string(doc), "\n") {
		t := strings.TrimSpace(line)
		if t != "" && t != "---" && !strings.HasPrefix(t, "#") {
			return false
		}
	}
	return true
}
