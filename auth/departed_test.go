package auth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/testing/pki"
)

// A person reported as having left is refused whatever credential they
// present — an API token (revoked on the spot, by the departure), a client
// certificate, an OIDC token — with a short reason; someone still here and
// the bootstrap token are not. On the code before, carol's token kept
// working after her departure.
func TestDepartedPersonIsRefusedWhateverTheCredential(t *testing.T) {
	ctx := t.Context()
	st := &memTokens{m: map[string]TokenRecord{}}
	carolTok, carolRec, err := CreateToken(ctx, st, TokenSpec{User: "Carol@Example.com", Grant: Grant{Role: RoleApprover}, CreatedBy: "admin"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	bobTok, _, err := CreateToken(ctx, st, TokenSpec{User: "bob@example.com", Grant: Grant{Role: RoleApprover}, CreatedBy: "admin"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ca := pki.NewCA(t, "people CA")
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pki.WriteFile(t, caFile, ca.PEM)
	dir := NewDirectory(nil)
	certs, err := NewCerts(CertConfig{CAFile: caFile}, dir)
	if err != nil {
		t.Fatal(err)
	}
	left := Left{Reason: "carol@example.com left on 2026-12-05 03:01 UTC (departure via hr)", By: "departure:hr"}
	var revoked []string
	storeDown := false
	a := &Authenticator{Tokens: st, NotFound: func(err error) bool { return errors.Is(err, errNotFound) }, Certs: certs, Bootstrap: strings.Repeat("b0", 32),
		Departed: func(_ context.Context, id string) (*Left, error) {
			if storeDown {
				return nil, errors.New("store unavailable")
			}
			if id == "carol@example.com" {
				return &left, nil
			}
			return nil, nil
		},
		RevokeDeparted: func(ctx context.Context, tokenID, user string, l Left) error {
			revoked = append(revoked, tokenID+" "+user+" "+l.By)
			return st.RevokeToken(ctx, tokenID, time.Now())
		}}
	req := func(bearer string, cert *x509.Certificate) *http.Request {
		r, _ := http.NewRequest("GET", "/v1/whoami", nil)
		if bearer != "" {
			r.Header.Set("Authorization", "Bearer "+bearer)
		}
		if cert != nil {
			r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}
		}
		return r
	}
	refused := func(what string, r *http.Request) *DepartedError {
		t.Helper()
		p, err := a.Authenticate(ctx, r)
		var de *DepartedError
		if !errors.As(err, &de) || !errors.Is(err, ErrUnauthenticated) || !strings.HasPrefix(err.Error(), left.Reason) {
			t.Fatalf("%s of carol, departed: %+v %v", what, p, err)
		}
		return de
	}
	if de := refused("token", req(carolTok, nil)); !de.Revoked || de.TokenID != carolRec.ID {
		t.Fatalf("token not revoked: %+v", de)
	}
	if len(revoked) != 1 || revoked[0] != carolRec.ID+" carol@example.com departure:hr" {
		t.Fatalf("revocations %v", revoked)
	}
	if rec, _ := st.TokenByHash(ctx, HashToken(carolTok)); rec.Live(time.Now()) {
		t.Fatal("carol's token is still live in the store")
	}
	if de := refused("revoked token", req(carolTok, nil)); !de.Revoked || len(revoked) != 1 {
		t.Fatalf("the revoked token presented again: %+v, %d revocations", de, len(revoked))
	}
	carolCert := ca.Issue(t, pki.Leaf{Emails: []string{"carol@example.com"}}).Cert
	refused("client certificate", req("", carolCert))
	if p, err := a.Authenticate(ctx, req(bobTok, nil)); err != nil || p.ID != "bob@example.com" {
		t.Fatalf("bob, still here: %+v %v", p, err)
	}
	if p, err := a.Authenticate(ctx, req(strings.Repeat("b0", 32), nil)); err != nil || p.ID != BootstrapID {
		t.Fatalf("bootstrap: %+v %v", p, err)
	}
	storeDown = true
	if _, err := a.Authenticate(ctx, req(bobTok, nil)); err == nil || errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("with the departure record unreadable: %v, want an error that is not a failed authentication (503)", err)
	}
}

// An OIDC token of a person who left, valid at the provider, is refused.
func TestDepartedPersonOIDCTokenIsRefused(t *testing.T) {
	p := startIDP(t)
	o := NewOIDC(OIDCConfig{Issuer: p.issuer, Audience: "rekey", Groups: map[string][]Grant{"secops": {{Role: RoleApprover}}}}, NewDirectory(nil))
	a := &Authenticator{OIDC: o, Departed: func(_ context.Context, id string) (*Left, error) {
		if id == "ana@example.com" {
			return &Left{Reason: "ana@example.com left on 2026-12-05 03:01 UTC (departure via hr)", By: "departure:hr"}, nil
		}
		return nil, nil
	}}
	r, _ := http.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+p.login("rekey", "ana", "pw-ana"))
	var de *DepartedError
	if pr, err := a.Authenticate(t.Context(), r); !errors.As(err, &de) || de.Revoked {
		t.Fatalf("ana's OIDC token, ana departed: %+v %v", pr, err)
	}
	r.Header.Set("Authorization", "Bearer "+p.login("rekey", "bob", "pw-bob"))
	if pr, err := a.Authenticate(t.Context(), r); err != nil {
		t.Fatalf("bob's: %+v %v", pr, err)
	}
}
