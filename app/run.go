// Package app is rekey's composition root: it turns a configuration into a
// store, adapters (one explicit factory map per family), an engine, a
// scheduler and one HTTP listener, and runs them. It is the only package
// that imports adapters.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/rekeyhq/rekey/config"
	"github.com/rekeyhq/rekey/rotator"
)

// Options run the daemon.
type Options struct {
	ConfigPath string
	// Logs receives JSON logs (default stderr).
	Logs io.Writer
	// Ready, if set, receives the listener's address once it accepts.
	Ready chan<- string
}

var timeNow = time.Now

// NewLogger returns the JSON logger at the configured level.
func NewLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// FailpointFromEnv returns a failpoint that SIGKILLs the process when the
// engine reaches the point named by REKEY_FAILPOINT (e.g. "staging:after"),
// for crash tests of the real binary. Unset, it returns nil.
func FailpointFromEnv(logger *slog.Logger) func(string) {
	want := os.Getenv("REKEY_FAILPOINT")
	if want == "" {
		return nil
	}
	logger.Warn("failpoint armed: the process will kill itself", "failpoint", want)
	return func(name string) {
		if name == want {
			logger.Warn("failpoint reached; SIGKILL", "failpoint", name)
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // never continue past the failpoint
		}
	}
}

// Run loads the configuration and runs the daemon until ctx ends.
func Run(ctx context.Context, o Options) error {
	cfg, err := config.Load(o.ConfigPath)
	if err != nil {
		return err
	}
	logs := o.Logs
	if logs == nil {
		logs = os.Stderr
	}
	logger := NewLogger(logs, cfg.Daemon.LogLevel)
	// Bind first: with port 0 the lease identity may depend on the port.
	ln, err := net.Listen("tcp", cfg.Daemon.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Daemon.Listen, err)
	}
	defer ln.Close()
	d, err := Build(ctx, cfg, logger, BuildOptions{Failpoint: FailpointFromEnv(logger), Owner: leaseOwner(cfg, ln.Addr())})
	if err != nil {
		return err
	}
	defer d.Close()
	return d.serve(ctx, ln, o.Ready)
}

// leaseOwner is the daemon's identity in rotation leases when the listen
// address alone cannot give one, or "" to keep Build's default (host and
// configured listen address: stable across restarts, unique on the host).
// With port 0 every daemon on the host would share "host/127.0.0.1:0", so
// the identity is the address file instead (stable across restarts, and no
// two daemons write the same file), or, without one, the bound address
// (unique, but a restarted daemon then waits out its old lease before it
// resumes its rotations).
func leaseOwner(cfg *config.Config, bound net.Addr) string {
	_, port, err := net.SplitHostPort(cfg.Daemon.Listen)
	if err != nil || port != "0" {
		return ""
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	if f := cfg.Daemon.AddressFile; f != "" {
		if abs, err := filepath.Abs(f); err == nil {
			f = abs
		}
		return host + "/" + cfg.Daemon.Listen + "@" + f
	}
	return host + "/" + bound.String()
}

// Serve runs the listener, the engine and the scheduler until ctx ends.
func (d *Daemon) Serve(ctx context.Context, ready chan<- string) error {
	ln, err := net.Listen("tcp", d.Config.Daemon.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", d.Config.Daemon.Listen, err)
	}
	return d.serve(ctx, ln, ready)
}

func (d *Daemon) serve(ctx context.Context, ln net.Listener, ready chan<- string) error {
	addr := ln.Addr().String()
	srv := &http.Server{Handler: d.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	errc := make(chan error, 3)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http: %w", err)
		}
	}()
	if f := d.Config.Daemon.AddressFile; f != "" {
		if err := writeAddressFile(f, addr); err != nil {
			_ = srv.Close()
			return err
		}
		defer os.Remove(f) // a stopped daemon listens nowhere
	}
	d.Logger.Info("rekey started", "listen", addr, "address_file", d.Config.Daemon.AddressFile, "keys", len(d.Config.Keys),
		"store", d.Config.Store.Type, "admin_api", !d.AdminToken.IsZero())
	if ready != nil {
		ready <- addr
	}
	ectx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer d.startAudit(ectx)()
	go func() { errc <- d.Engine.Run(ectx) }()
	for _, start := range d.starters {
		if err := start(ectx); err != nil {
			d.Logger.Error("start adapter", "err", err)
		}
	}
	keySpecs := map[string]string{}
	for _, k := range d.Config.Keys {
		if k.Schedule != "" {
			keySpecs[k.Name] = k.Schedule
		}
	}
	go func() {
		errc <- d.Engine.Schedule(ectx, rotator.ScheduleOptions{Spec: d.Config.Daemon.Schedule, KeySpecs: keySpecs, Jitter: d.Config.Daemon.Jitter})
	}()
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	d.Logger.Info("rekey stopping")
	cancel()
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	_ = srv.Shutdown(sctx)
	return runErr
}

// writeAddressFile writes the bound address (and a newline) to path
// atomically: a reader sees either no file, the previous one, or this
// address whole, never a partial write.
func writeAddressFile(path, addr string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("daemon.address_file: %w", err)
	}
	_, err = tmp.WriteString(addr + "\n")
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("daemon.address_file: write %s: %w", path, err)
	}
	return nil
}
