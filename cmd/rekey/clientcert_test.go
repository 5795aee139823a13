package main

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rekeyhq/rekey/testing/pki"
)

// A client certificate is a credential of its own over https, and a usage
// error (exit 2) when half-configured or over plain http.
func TestClientCertificateSettings(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := pki.NewCA(t, "people").Issue(t, pki.Leaf{Emails: []string{"a@example.com"}}).Write(t, dir, "me")
	cliWith := func(env map[string]string) *cli {
		return &cli{ctx: context.Background(), stdout: io.Discard, stderr: io.Discard, getenv: func(k string) string { return env[k] }}
	}
	for name, tc := range map[string]struct {
		env  map[string]string
		addr string
		want string
	}{
		"a certificate without its key": {map[string]string{"REKEY_CLIENT_CERT": certFile}, "https://rekey.internal:8081", "needs both"},
		"a key without its certificate": {map[string]string{"REKEY_CLIENT_KEY": keyFile}, "https://rekey.internal:8081", "needs both"},
		"over plain http":               {map[string]string{"REKEY_CLIENT_CERT": certFile, "REKEY_CLIENT_KEY": keyFile}, "http://127.0.0.1:8081", "over TLS only"},
		"over a unix socket":            {map[string]string{"REKEY_CLIENT_CERT": certFile, "REKEY_CLIENT_KEY": keyFile}, "unix:/run/rekey.sock", "over TLS only"},
		"a key that is not the cert's":  {map[string]string{"REKEY_CLIENT_CERT": certFile, "REKEY_CLIENT_KEY": filepath.Join(dir, "none.key")}, "https://rekey.internal:8081", "none.key"},
	} {
		_, err := cliWith(tc.env).dial(tc.addr)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a usage error with %q", name, err, tc.want)
		}
	}
	cl, err := cliWith(map[string]string{"REKEY_CLIENT_CERT": certFile, "REKEY_CLIENT_KEY": keyFile}).dial("https://rekey.internal:8081")
	if err != nil || cl.token != "" {
		t.Fatalf("a client certificate alone: %v (token %q), want a client that sends no bearer token", err, cl.token)
	}
	c := cliWith(map[string]string{"REKEY_TOKEN": "rk_x"})
	c.clientTLS = clientCert{cert: certFile, key: keyFile}
	if cl, err := c.dial("https://rekey.internal:8081"); err != nil || cl.token != "rk_x" {
		t.Fatalf("--client-cert with REKEY_TOKEN: %v, want both sent", err)
	}
}
