package app

import (
	"cmp"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// buildInfo is rekey_build_info: 1, labelled with the version (stamped, or
// the module version Go recorded), the VCS revision and the Go version.
func buildInfo(version, stamped string) prometheus.Collector {
	revision, modVersion := "", ""
	if info, ok := debug.ReadBuildInfo(); ok {
		if info.Main.Version != "(devel)" {
			modVersion = info.Main.Version
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	if version == "(devel)" {
		version = ""
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "rekey_build_info", Help: "Always 1; the labels say which rekey runs.",
		ConstLabels: prometheus.Labels{"version": cmp.Or(version, modVersion, "(devel)"), "revision": cmp.Or(stamped, revision, "unknown"), "goversion": runtime.Version()},
	})
	g.Set(1)
	return g
}
