// Package app is rekey's composition root: it turns a configuration into a
// store, adapters (one explicit factory map per family), an engine, a
// scheduler and two HTTP listeners (public webhooks; admin API and
// metrics), and runs them. It is the only package
// that imports adapters.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
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
	// Ready, if set, receives the public listener's address once both
	// listeners accept.
	Ready chan<- string
	// AdminReady, if set, receives the admin listener's address then.
	AdminReady chan<- string
	// Version is the binary's version (rekey_build_info, the cluster view).
	Version string
	// Revision is the commit the binary was built from, when stamped.
	Revision string
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

// Run loads the configuration and runs the daemon until ctx ends. The
// listeners serve from the start: while the store cannot be reached the
// daemon waits for it with backoff, /healthz answers 200, /readyz and every
// other request 503.
func Run(ctx context.Context, o Options) error {
	cfg, err := config.Load(o.ConfigPath)
	if err != nil {
		return err
	}
	if errs := Validate(cfg); len(errs) > 0 {
		return errs
	}
	// A shared token too weak to use stops the start before anything
	// listens or any store is created.
	if err := checkSharedTokens(cfg); err != nil {
		return err
	}
	if err := checkClientCA(cfg); err != nil {
		return err
	}
	logs := o.Logs
	if logs == nil {
		logs = os.Stderr
	}
	logger := NewLogger(logs, cfg.Daemon.LogLevel)
	ln, err := net.Listen("tcp", cfg.Daemon.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Daemon.Listen, err)
	}
	defer ln.Close()
	aln, err := listenAdmin(cfg.Daemon.AdminListen)
	if err != nil {
		return err
	}
	defer aln.Close()
	srv, err := startHTTP(cfg, logger, ln, aln)
	if err != nil {
		return err
	}
	defer srv.shutdown()
	d, err := buildWhenReachable(ctx, cfg, logger, BuildOptions{Failpoint: FailpointFromEnv(logger), Version: o.Version, Revision: o.Revision})
	if err != nil {
		return err
	}
	defer d.Close()
	return d.serve(ctx, srv, o.Ready, o.AdminReady)
}

// listenAdmin binds the admin listener: host:port, or unix:/path (a stale
// socket file is replaced; the new one is created 0600, owner only).
func listenAdmin(addr string) (net.Listener, error) {
	sock, ok := strings.CutPrefix(addr, "unix:")
	if !ok {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("daemon.admin_listen: listen on %s: %w", addr, err)
		}
		return ln, nil
	}
	if st, err := os.Lstat(sock); err == nil && st.Mode()&os.ModeSocket != 0 {
		_ = os.Remove(sock)
	}
	old := syscall.Umask(0o177) // no window in which the socket is open to others
	ln, err := net.Listen("unix", sock)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("daemon.admin_listen: listen on %s: %w", addr, err)
	}
	if err := os.Chmod(sock, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("daemon.admin_listen: chmod %s: %w", sock, err)
	}
	return ln, nil
}

// servers are the two listeners' HTTP servers. Their handlers start as
// the waiting handler and become the daemon's once it is built.
type servers struct {
	addr, adminAddr string
	pubTLS, admTLS  bool
	public, admin   *swapHandler
	list            []*http.Server
	errc            chan error
	files           []string
}

func startHTTP(cfg *config.Config, logger *slog.Logger, ln, aln net.Listener) (*servers, error) {
	s := &servers{addr: ln.Addr().String(), adminAddr: aln.Addr().String(), errc: make(chan error, 4)}
	if aln.Addr().Network() == "unix" {
		s.adminAddr = "unix:" + s.adminAddr
	}
	pubTLS, err := tlsConfig(cfg.Daemon.TLS, "daemon.tls")
	if err != nil {
		return nil, err
	}
	admTLS, err := tlsConfig(cfg.Daemon.AdminTLS, "daemon.admin_tls")
	if err != nil {
		return nil, err
	}
	s.pubTLS, s.admTLS = pubTLS != nil, admTLS != nil
	s.public, s.admin = newSwapHandler(waitingHandler()), newSwapHandler(waitingHandler())
	for _, l := range []struct {
		name string
		ln   net.Listener
		h    http.Handler
		tls  *tls.Config
	}{{"public", ln, s.public, pubTLS}, {"admin", aln, s.admin, admTLS}} {
		srv := &http.Server{Handler: l.h, TLSConfig: l.tls, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
		s.list = append(s.list, srv)
		go func() {
			var err error
			if l.tls != nil {
				err = srv.ServeTLS(l.ln, "", "")
			} else {
				err = srv.Serve(l.ln)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.errc <- fmt.Errorf("http (%s listener): %w", l.name, err)
			}
		}()
	}
	for _, f := range []struct{ path, addr, field string }{
		{cfg.Daemon.AddressFile, s.addr, "daemon.address_file"}, {cfg.Daemon.AdminAddressFile, s.adminAddr, "daemon.admin_address_file"},
	} {
		if f.path == "" {
			continue
		}
		if err := writeAddressFile(f.path, f.addr, f.field); err != nil {
			s.shutdown()
			return nil, err
		}
		s.files = append(s.files, f.path) // a stopped daemon listens nowhere
	}
	logger.Info("rekey listening", "listen", s.addr, "address_file", cfg.Daemon.AddressFile, "admin_listen", s.adminAddr,
		"admin_address_file", cfg.Daemon.AdminAddressFile, "tls", s.pubTLS, "admin_tls", s.admTLS)
	return s, nil
}

func (s *servers) shutdown() {
	for _, f := range s.files {
		_ = os.Remove(f)
	}
	s.files = nil
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, srv := range s.list {
		_ = srv.Shutdown(sctx)
	}
}

func (d *Daemon) serve(ctx context.Context, srv *servers, ready, adminReady chan<- string) error {
	d.readiness = newReadiness()
	srv.public.set(d.PublicHandler())
	srv.admin.set(d.AdminHandler())
	d.Logger.Info("rekey started", "listen", srv.addr, "admin_listen", srv.adminAddr, "instance", d.Engine.Owner(),
		"lease_ttl", d.Engine.LeaseTTL().String(), "keys", len(d.Config.Keys), "store", d.Config.Store.Type,
		"bootstrap_admin_token", d.Auth.Bootstrap != "", "oidc", d.Auth.OIDC != nil)
	if ready != nil {
		ready <- srv.addr
	}
	if adminReady != nil {
		adminReady <- srv.adminAddr
	}
	errc := srv.errc
	ectx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer d.startAudit(ectx)()
	go d.readiness.run(ectx, d)
	// The engine resumes what is in flight at once (its errors are
	// recorded and retried, visibly); the scheduler, which starts new
	// rotations and bootstraps, waits until the store, issuers and sinks
	// answered: with an unreachable issuer it would only start rotations
	// blindly and fail them.
	engineDone := make(chan struct{})
	go func() {
		defer close(engineDone)
		errc <- d.Engine.Run(ectx)
	}()
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
		if !d.readiness.waitNeeded(ectx) {
			return
		}
		d.Logger.Info("dependencies answer; scheduler starting")
		errc <- d.Engine.Schedule(ectx, rotator.ScheduleOptions{Spec: d.Config.Daemon.Schedule, KeySpecs: keySpecs, Jitter: d.Config.Daemon.Jitter})
	}()
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	d.Logger.Info("rekey stopping")
	cancel()
	srv.shutdown()
	// The engine finishes the steps in flight, gives its leases back and
	// leaves the cluster view before the caller closes the store under it.
	select {
	case <-engineDone:
	case <-time.After(d.Config.Daemon.StepTimeout + 5*time.Second):
		d.Logger.Warn("the engine did not stop within its step timeout; closing the store under it")
	}
	return runErr
}

// writeAddressFile writes the bound address (and a newline) to path
// atomically: a reader sees either no file, the previous one, or this
// address whole, never a partial write.
func writeAddressFile(path, addr, field string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("%s: %w", field, err)
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
		return fmt.Errorf("%s: write %s: %w", field, path, err)
	}
	return nil
}
