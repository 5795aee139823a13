package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/rekeyhq/rekey/app"
	"github.com/rekeyhq/rekey/config"
)

// requestTimeout bounds one admin API call.
const requestTimeout = 60 * time.Second

// connect returns the client a verb talks through. With --break-glass (or
// REKEY_BREAK_GLASS=1) it opens the store named by the configuration;
// otherwise, with REKEY_ADDR, it talks to the daemon. Without either, a
// verb that reads opens the store read-only in spirit (it never creates
// one) and a verb that acts is refused: acting without the daemon is the
// break-glass path, and must be asked for.
func (c *cli) connect(cmd string, acts bool) (*client, error) {
	if c.breakGlass || c.getenv("REKEY_BREAK_GLASS") == "1" {
		return c.openLocal(acts)
	}
	if addr := strings.TrimSpace(c.getenv("REKEY_ADDR")); addr != "" {
		return c.dial(addr)
	}
	if acts {
		return nil, usageError{fmt.Sprintf("%s changes state: set REKEY_ADDR (and REKEY_TOKEN) to act through the daemon, "+
			"or pass --break-glass to open the store directly (an emergency path, recorded in the audit trail as %s)",
			cmd, app.BreakGlassPrincipal().ID)}
	}
	return c.openLocal(false)
}

// dial builds the API client for addr: http(s)://host:port, host:port
// (http), or unix:///path (unix:/path as the daemon's admin_address_file
// writes it).
func (c *cli) dial(addr string) (*client, error) {
	token, cert, err := c.credentials(addr)
	if err != nil {
		return nil, err
	}
	return c.dialAs(addr, token, cert)
}

// dialAs is dial with token as the credential ("": none, as rekey login
// asks the daemon for its OIDC settings) and cert, if any, as the client
// certificate.
func (c *cli) dialAs(addr, token string, cert *tls.Certificate) (*client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// No redirects: a redirect would carry a submitted secret (the token
	// is stripped across hosts, a request body is not) to wherever the
	// answer points.
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	cl := &client{http: &http.Client{Transport: tr, Timeout: requestTimeout, CheckRedirect: noRedirect}, token: token, where: "the daemon at " + addr}
	if sock, ok := strings.CutPrefix(addr, "unix:"); ok {
		sock = "/" + strings.TrimLeft(sock, "/")
		tr.Proxy = nil
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}
		cl.base = "http://rekey"
		return cl, nil
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	switch {
	case err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		return nil, usageError{"REKEY_ADDR: expected http://host:port, https://host:port or unix:///path"}
	case u.User != nil:
		// Never echoed: it holds a password.
		return nil, usageError{"REKEY_ADDR carries credentials (user:password@): rekey authenticates with REKEY_TOKEN or --token-file; remove them from the address"}
	case u.RawQuery != "" || u.Fragment != "":
		return nil, usageError{fmt.Sprintf("REKEY_ADDR %s: no query or fragment, only scheme://host:port[/path]", u.Redacted())}
	}
	cl.base = strings.TrimRight(addr, "/")
	if err := plainHTTPAllowed(cl.base, c.getenv("REKEY_INSECURE_HTTP")); err != nil {
		return nil, err
	}
	ca := c.cacert
	if ca == "" {
		ca = c.getenv("REKEY_CACERT")
	}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, usageError{fmt.Sprintf("--cacert: %v", err)}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usageError{fmt.Sprintf("--cacert %s: no PEM certificate in it", ca)}
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	useClientCert(tr, cert)
	return cl, nil
}

// credential is the bearer token: --token-file, else $REKEY_TOKEN_FILE,
// else $REKEY_TOKEN, else the login `rekey login` cached for REKEY_ADDR.
func (c *cli) credential() (string, error) {
	file := c.tokenFile
	if file == "" {
		file = c.getenv("REKEY_TOKEN_FILE")
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", usageError{fmt.Sprintf("token file: %v", err)}
		}
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, nil
		}
		return "", usageError{fmt.Sprintf("token file %s is empty", file)}
	}
	if t := strings.TrimSpace(c.getenv("REKEY_TOKEN")); t != "" {
		return t, nil
	}
	if t, ok, err := c.loginToken(); ok || err != nil {
		return t, err
	}
	return "", usageError{"REKEY_ADDR is set but no credential: run rekey login (OIDC), or set REKEY_TOKEN, REKEY_TOKEN_FILE or --token-file " +
		"(an API token from `rekey token create`, or an OIDC ID token)"}
}

// loadConfig reads the configuration; a missing or unreadable file is a
// configuration error (exit 2).
func (c *cli) loadConfig() (*config.Config, error) {
	cfg, err := config.Load(c.config)
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			return nil, err
		}
		return nil, configError{err}
	}
	return cfg, nil
}

// openLocal builds the daemon's objects over the store and serves the
// admin API in process as the break-glass principal. A reader (acts
// false) never creates a store: when the SQLite file does not exist it
// fails naming where it looked.
func (c *cli) openLocal(acts bool) (*client, error) {
	cfg, err := c.loadConfig()
	if err != nil {
		return nil, err
	}
	path, exists := app.StoreFile(cfg)
	if !exists && !acts {
		return nil, fmt.Errorf("no store at %s (store.path of %s): nothing was created. Set REKEY_ADDR to ask the daemon, "+
			"or check -c", path, c.config)
	}
	level := "warn"
	if strings.EqualFold(cfg.Daemon.LogLevel, "debug") {
		level = "debug"
	}
	// Only a daemon's start migrates a schema: a newer binary run by hand
	// must not migrate a store older daemons share. A store this command
	// creates (break-glass, no daemon ever ran) is new and migrated.
	d, err := app.Build(c.ctx, cfg, app.NewLogger(c.stderr, level),
		app.BuildOptions{Owner: app.InstanceID() + "/cli", EnqueueOnly: true, NoMigrate: exists})
	if errors.Is(err, app.ErrSchemaBehind) {
		return nil, fmt.Errorf("%w\nrekey's commands never migrate the store: upgrade and start the daemon first, or use the rekey binary of the daemons' version", err)
	}
	if err != nil {
		return nil, err
	}
	p := app.BreakGlassPrincipal()
	return &client{http: &http.Client{Transport: handlerTransport{d.BreakGlassHandler(p)}}, base: "http://break-glass",
		where: "the store of " + c.config, local: d, principal: p, step: func(ctx context.Context, id string) { d.Engine.DriveOne(ctx, id) }}, nil
}

// plainHTTPAllowed refuses http:// to anything but the loopback interface:
// the token and submitted secrets would cross the network in the clear.
// REKEY_INSECURE_HTTP=1 allows it (a TLS-terminating sidecar on the same
// pod network, say).
func plainHTTPAllowed(base, insecure string) error {
	rest, ok := strings.CutPrefix(base, "http://")
	if !ok || insecure == "1" {
		return nil
	}
	host := rest
	if i := strings.IndexAny(host, "/"); i >= 0 {
		host = host[:i]
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return usageError{fmt.Sprintf("REKEY_ADDR %s: plain http to a host other than loopback would send your token and any submitted secret in the clear; use https:// (REKEY_CACERT for a private CA), or set REKEY_INSECURE_HTTP=1 if the network path is protected otherwise", base)}
}
