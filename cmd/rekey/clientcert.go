package main

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"

	"github.com/spf13/pflag"
)

// clientCert is --client-cert and --client-key: a client certificate the
// CLI presents to an admin listener that verifies them
// (daemon.admin_tls.client_ca_file).
type clientCert struct{ cert, key string }

func (c *cli) clientCertFlags(f *pflag.FlagSet) {
	f.StringVar(&c.clientTLS.cert, "client-cert", "", "PEM client certificate presented to the admin listener (mTLS) [$REKEY_CLIENT_CERT]")
	f.StringVar(&c.clientTLS.key, "client-key", "", "PEM private key of --client-cert [$REKEY_CLIENT_KEY]")
}

// clientCertificate loads the client certificate and key (flags, else
// $REKEY_CLIENT_CERT and $REKEY_CLIENT_KEY); nil when none is set.
func (c *cli) clientCertificate(addr string) (*tls.Certificate, error) {
	cert, key := c.clientTLS.cert, c.clientTLS.key
	if cert == "" {
		cert = c.getenv("REKEY_CLIENT_CERT")
	}
	if key == "" {
		key = c.getenv("REKEY_CLIENT_KEY")
	}
	switch {
	case cert == "" && key == "":
		return nil, nil
	case cert == "" || key == "":
		return nil, usageError{"a client certificate needs both --client-cert and --client-key ($REKEY_CLIENT_CERT and $REKEY_CLIENT_KEY)"}
	case !strings.HasPrefix(addr, "https://"):
		return nil, usageError{"a client certificate is presented over TLS only: REKEY_ADDR must be https://host:port"}
	}
	kp, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, usageError{fmt.Sprintf("--client-cert %s / --client-key %s: %v", cert, key, err)}
	}
	return &kp, nil
}

// credentials are what dial authenticates with: a bearer token and a
// client certificate. A client certificate alone is a credential: with
// one and no token configured (REKEY_TOKEN, REKEY_TOKEN_FILE,
// --token-file), no Authorization header is sent.
func (c *cli) credentials(addr string) (string, *tls.Certificate, error) {
	cert, err := c.clientCertificate(addr)
	if err != nil {
		return "", nil, err
	}
	if cert != nil && c.tokenFile == "" && c.getenv("REKEY_TOKEN_FILE") == "" && strings.TrimSpace(c.getenv("REKEY_TOKEN")) == "" {
		return "", cert, nil
	}
	token, err := c.credential()
	return token, cert, err
}

// useClientCert presents cert (if any) on tr's TLS connections.
func useClientCert(tr *http.Transport, cert *tls.Certificate) {
	if cert == nil {
		return
	}
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
}
