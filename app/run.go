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
	d, err := Build(ctx, cfg, logger, BuildOptions{Failpoint: FailpointFromEnv(logger)})
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Serve(ctx, o.Ready)
}

// Serve runs the listener, the engine and the scheduler until ctx ends.
func (d *Daemon) Serve(ctx context.Context, ready chan<- string) error {
	ln, err := net.Listen("tcp", d.Config.Daemon.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", d.Config.Daemon.Listen, err)
	}
	srv := &http.Server{Handler: d.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	errc := make(chan error, 3)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http: %w", err)
		}
	}()
	d.Logger.Info("rekey started", "listen", ln.Addr().String(), "keys", len(d.Config.Keys), "store", d.Config.Store.Type,
		"admin_api", !d.AdminToken.IsZero())
	if ready != nil {
		ready <- ln.Addr().String()
	}
	ectx, cancel := context.WithCancel(ctx)
	defer cancel()
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
