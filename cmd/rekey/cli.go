package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/rekeyhq/rekey/app"
	"github.com/rekeyhq/rekey/config"
)

// cli holds what every command needs.
type cli struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// common are the flags every command shares.
type common struct {
	config string
	output string
	as     string
}

func (c *cli) flags(name string, withAs bool) (*flag.FlagSet, *common) {
	fs := flag.NewFlagSet("rekey "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	o := &common{}
	def := os.Getenv("REKEY_CONFIG")
	if def == "" {
		def = "rekey.yaml"
	}
	fs.StringVar(&o.config, "c", def, "configuration file")
	fs.StringVar(&o.config, "config", def, "configuration file")
	fs.StringVar(&o.output, "o", "table", "output: table or json")
	if withAs {
		fs.StringVar(&o.as, "as", defaultActor(), "who is acting (recorded in the audit trail)")
	}
	return fs, o
}

// parse parses flags, allowing them after positional arguments too.
func parse(fs *flag.FlagSet, o *common, args []string, nargs int, what string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usageError{err.Error()}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if o.output != "table" && o.output != "json" {
		return nil, usageError{"-o must be table or json"}
	}
	if nargs >= 0 && len(pos) != nargs {
		return nil, usageError{fmt.Sprintf("%s: expected %s", fs.Name(), what)}
	}
	return pos, nil
}

func defaultActor() string {
	for _, v := range []string{"REKEY_ACTOR", "USER"} {
		if s := os.Getenv(v); s != "" {
			return s
		}
	}
	return ""
}

// open loads, validates and builds the daemon's objects for a command.
func (c *cli) open(o *common) (*app.Daemon, error) {
	cfg, err := config.Load(o.config)
	if err != nil {
		return nil, err
	}
	level := "warn"
	if strings.EqualFold(cfg.Daemon.LogLevel, "debug") {
		level = "debug"
	}
	return app.Build(c.ctx, cfg, app.NewLogger(c.stderr, level), app.BuildOptions{Owner: app.InstanceID() + "/cli", EnqueueOnly: true})
}
