package main

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is stamped at build time:
//
//	go build -ldflags "-X main.version=v1.2.3" ./cmd/rekey
//
// Unstamped builds report the module version Go recorded, or "(devel)".
var version = "(devel)"

// versionString is the version with the VCS revision when Go recorded one.
func versionString() string {
	v := version
	if v == "" {
		v = "(devel)" // stamped with an empty -X
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if v == "(devel)" && info.Main.Version != "" {
		v = info.Main.Version
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" {
			return v + " (" + s.Value + ")"
		}
	}
	return v
}

func cmdVersion(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "The version of this binary (and the commit it was built from)",
		Example: "  rekey version",
		Args:    args(0, ""),
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintln(c.stdout, "rekey "+versionString())
			return err
		},
	}
}
