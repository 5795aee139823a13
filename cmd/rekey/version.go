package main

import (
	"encoding/json"
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version and commit are stamped at build time (make build, the
// Dockerfile):
//
//	go build -ldflags "-X main.version=v1.2.3 -X main.commit=$(git rev-parse HEAD)" ./cmd/rekey
//
// Unstamped builds report the module version and VCS revision Go recorded,
// or "(devel)".
var (
	version = "(devel)"
	commit  = ""
)

// versionString is the version with the commit it was built from, when
// stamped or recorded by Go.
func versionString() string {
	v, c := versionParts()
	if c == "" {
		return v
	}
	return v + " (" + c + ")"
}

// versionParts is the version and the commit (empty when unknown).
func versionParts() (v, c string) {
	v = version
	if v == "" {
		v = "(devel)" // stamped with an empty -X
	}
	if commit != "" {
		return v, commit
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return v, ""
	}
	if v == "(devel)" && info.Main.Version != "" {
		v = info.Main.Version
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" {
			return v, s.Value
		}
	}
	return v, ""
}

func cmdVersion(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "The version of this binary (and the commit it was built from)",
		Example: "  rekey version",
		Args:    args(0, ""),
		RunE: func(*cobra.Command, []string) error {
			if c.output == "json" {
				v, commit := versionParts()
				return json.NewEncoder(c.stdout).Encode(struct {
					Version string `json:"version"`
					Commit  string `json:"commit,omitempty"`
				}{v, commit})
			}
			_, err := fmt.Fprintln(c.stdout, "rekey "+versionString())
			return err
		},
	}
}
