package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/testing/pki"
)

// mtlsTemplate is cfgTemplate with the admin listener over TLS, requiring
// a client certificate of the people CA, and roles for certificates.
var mtlsTemplate = strings.NewReplacer(
	"  admin_token_file: {{.Dir}}/admin-token\n",
	"  admin_token_file: {{.Dir}}/admin-token\n"+
		"  admin_tls:\n    cert_file: {{.Dir}}/admin.crt\n    key_file: {{.Dir}}/admin.key\n"+
		"    client_ca_file: {{.Dir}}/people-ca.pem\n    client_auth: require\n",
	"store:\n",
	"auth:\n  identities: {bob@example.com: bob, carol@example.com: carol}\n  certs:\n    users:\n"+
		"      - {identity: bob, role: operator}\n      - {identity: bob, role: approver}\n      - {identity: carol, role: approver}\n"+
		"store:\n",
).Replace(cfgTemplate)

// With only a client certificate (no REKEY_TOKEN), from an empty directory,
// over https with the server's CA in REKEY_CACERT: whoami names the
// certificate's person, rotate and approve act as them, self-approval is
// still refused (exit 3), a bearer token alone or a certificate of another
// CA is refused, and no private key reaches a log or the store.
func TestCLIWithAClientCertificate(t *testing.T) {
	t.Parallel()
	if !strings.Contains(mtlsTemplate, "client_auth: require") || !strings.Contains(mtlsTemplate, "auth:\n  identities") {
		t.Fatal("the mTLS template did not apply to cfgTemplate")
	}
	w := newWorldFrom(t, mtlsTemplate, func(w *world) any {
		return params{Dir: w.dir, Hook: w.hook.URL, MaxAge: "90d", Quiet: "0s", Watch: "0s", Sched: "@every 1h", Keys: []string{"api"}, Approval: true}
	})
	serverCA, people := pki.NewCA(t, "rekey admin CA"), pki.NewCA(t, "people CA")
	serverCA.Issue(t, pki.Leaf{CN: "rekey", Server: true}).Write(t, w.dir, "admin")
	pki.WriteFile(t, filepath.Join(w.dir, "people-ca.pem"), people.PEM)
	serverCAFile := filepath.Join(w.dir, "server-ca.pem")
	pki.WriteFile(t, serverCAFile, serverCA.PEM)
	certDir := t.TempDir()
	bob := people.Issue(t, pki.Leaf{CN: "Bob", Emails: []string{"Bob@Example.com"}})
	carol := people.Issue(t, pki.Leaf{Emails: []string{"carol@example.com"}})
	mallory := pki.NewCA(t, "mallory's CA").Issue(t, pki.Leaf{Emails: []string{"carol@example.com"}})
	for _, p := range []pki.Pair{bob, carol, mallory} {
		addSecret(strings.TrimSpace(string(p.KeyPEM)))
	}
	bobCert, bobKey := bob.Write(t, certDir, "bob")
	carolCert, carolKey := carol.Write(t, certDir, "carol")
	malCert, malKey := mallory.Write(t, certDir, "mallory")
	w.start()

	addr := "REKEY_ADDR=https://" + w.AdminAddr()
	asBob := w.shell(addr, "REKEY_CACERT="+serverCAFile, "REKEY_CLIENT_CERT="+bobCert, "REKEY_CLIENT_KEY="+bobKey)
	asCarol := w.shell(addr, "REKEY_CACERT="+serverCAFile) // by flags
	carolFlags := []string{"--client-cert", carolCert, "--client-key", carolKey}

	out := asBob.must("whoami")
	for _, want := range []string{"bob (via mtls)", "operator", "approver", "client certificate: serial " + bob.Cert.SerialNumber.Text(16)} {
		if !strings.Contains(out, want) {
			t.Errorf("whoami with bob's certificate lacks %q:\n%s", want, out)
		}
	}
	for name, sh := range map[string]*shell{
		"the bootstrap token and no certificate": w.shell(addr, "REKEY_CACERT="+serverCAFile, "REKEY_TOKEN="+adminToken),
		"a certificate of another CA":            w.shell(addr, "REKEY_CACERT="+serverCAFile, "REKEY_CLIENT_CERT="+malCert, "REKEY_CLIENT_KEY="+malKey),
	} {
		if out, errOut, code := sh.rekey("", "whoami"); code != 3 {
			t.Errorf("%s: exit %d, want 3 (refused)\n%s%s", name, code, out, errOut)
		}
	}
	// Two set-up mistakes, each said with its fix: plain http to the TLS
	// listener, and no REKEY_CACERT for the daemon's own CA.
	for name, tc := range map[string]struct {
		sh   *shell
		want string
	}{
		"http:// to the TLS listener": {w.shell("REKEY_ADDR=http://"+w.AdminAddr(), "REKEY_TOKEN="+adminToken), "speaks HTTPS"},
		"no REKEY_CACERT":             {w.shell(addr, "REKEY_CLIENT_CERT="+bobCert, "REKEY_CLIENT_KEY="+bobKey), "REKEY_CACERT"},
	} {
		if _, errOut, code := tc.sh.rekey("", "whoami"); code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: exit %d, want an error naming %q: %s", name, code, tc.want, errOut)
		}
	}

	deadline := patient(20 * time.Second)
	for !strings.Contains(asBob.must("status"), "current") {
		if time.Now().After(deadline) {
			t.Fatal("key api was never bootstrapped")
		}
		time.Sleep(100 * time.Millisecond)
	}
	var r rotationView
	if err := json.Unmarshal([]byte(asBob.must("rotate", "api", "--reason", "mtls e2e", "-o", "json")), &r); err != nil || r.ID == "" {
		t.Fatalf("rotate -o json: %v", err)
	}
	if out, errOut, code := asBob.rekey("", "approve", r.ID); code != 3 {
		t.Fatalf("bob approving his own rotation with his certificate: exit %d, want 3\n%s%s", code, out, errOut)
	}
	asCarol.must(append([]string{"approve", r.ID, "--comment", "checked"}, carolFlags...)...)
	deadline = patient(20 * time.Second)
	for {
		var got struct {
			Rotation rotationView `json:"rotation"`
		}
		_ = json.Unmarshal([]byte(asBob.must("show", r.ID, "-o", "json")), &got)
		if got.Rotation.Phase == "done" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the approved rotation is %s, want done", got.Rotation.Phase)
		}
		time.Sleep(100 * time.Millisecond)
	}

	var trail struct {
		Events []auditEvent `json:"events"`
	}
	if err := json.Unmarshal([]byte(asBob.must("audit", "-o", "json")), &trail); err != nil {
		t.Fatal(err)
	}
	var created, approved, certRecorded bool
	for _, e := range trail.Events {
		switch {
		case e.Action == "rotation.created" && e.RotationID == r.ID:
			created = e.Actor == "bob"
		case e.Action == "decision.approve" && e.RotationID == r.ID:
			approved = e.Actor == "carol" && e.Detail["via"] == "mtls"
		case e.Action == "mtls.request" && e.Actor == "bob" && e.Detail["request"] == "POST /v1/keys/api/rotate":
			certRecorded = e.Detail["cert_serial"] == bob.Cert.SerialNumber.Text(16) && len(e.Detail["cert_sha256"]) == 64
		}
	}
	if !created || !approved || !certRecorded {
		t.Errorf("audit trail: created by bob %v, approved by carol via mtls %v, bob's certificate recorded %v\n%+v", created, approved, certRecorded, trail.Events)
	}
	asBob.empty()
	asCarol.empty()
	w.scanForSecrets()
}
