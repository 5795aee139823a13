package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A person's shell: an empty working directory and an environment with
// nothing but PATH, HOME and what the test adds — no configuration, no
// REKEY_CONFIG, no production secret.
type shell struct {
	w   *world
	dir string
	env []string
}

func (w *world) shell(env ...string) *shell {
	home := w.t.TempDir()
	return &shell{w: w, dir: w.t.TempDir(), env: append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + home}, env...)}
}

// client is a shell that talks to the world's daemon with token.
func (w *world) client(token string) *shell {
	return w.shell("REKEY_ADDR=http://"+w.AdminAddr(), "REKEY_TOKEN="+token)
}

// rekey runs the binary in the shell (nothing appended).
func (s *shell) rekey(stdin string, args ...string) (stdout, stderr string, code int) {
	s.w.t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir, cmd.Env, cmd.Stdin = s.dir, s.env, strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		s.w.t.Fatal(err)
	}
	s.w.record(out.Bytes())
	s.w.record(errb.Bytes())
	return out.String(), errb.String(), code
}

// must runs a command that must exit 0 and returns its stdout.
func (s *shell) must(args ...string) string {
	s.w.t.Helper()
	out, errOut, code := s.rekey("", args...)
	if code != 0 {
		s.w.t.Fatalf("rekey %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// empty fails the test if anything was created in the shell's directory.
func (s *shell) empty() {
	s.w.t.Helper()
	if ents, _ := os.ReadDir(s.dir); len(ents) > 0 {
		s.w.t.Fatalf("the CLI created %s in the working directory", ents[0].Name())
	}
}

func (w *world) token(user, role string) string {
	w.t.Helper()
	out, code := w.cliStdout("", "token", "create", "--user", user, "--role", role)
	if code != 0 {
		w.t.Fatalf("token create --user %s: exit %d", user, code)
	}
	return strings.TrimSpace(out)
}

// tokenFromLead is a token for user created through the admin API by a
// person (lead@example.com, whose own token the bootstrap token created),
// with no break-glass account behind it: it may approve rotations the
// break-glass account started (what a token does is also done by the
// people behind it, its creator's creator included: docs/SECURITY.md).
func (w *world) tokenFromLead(user, role string) string {
	w.t.Helper()
	lead, errOut, code := w.client(adminToken).rekey("", "token", "create", "--user", "lead@example.com", "--role", "admin")
	if code != 0 {
		w.t.Fatalf("token create --user lead@example.com with the bootstrap token: exit %d: %s", code, errOut)
	}
	out, errOut, code := w.client(strings.TrimSpace(lead)).rekey("", "token", "create", "--user", user, "--role", role)
	if code != 0 {
		w.t.Fatalf("token create --user %s as lead: exit %d: %s", user, code, errOut)
	}
	return strings.TrimSpace(out)
}

// Through REKEY_ADDR and REKEY_TOKEN, from an empty directory with no
// configuration and no secret in the environment, people see, rotate and
// approve; the requester cannot approve their own rotation (exit 3); the
// trail records each principal.
func TestCLIClientFromAnEmptyDirectory(t *testing.T) {
	t.Parallel()
	w := newWorld(t, params{Approval: true})
	w.start()
	w.bootstrap("api")
	bobOp, bob, carol := w.token("bob", "operator"), w.token("bob", "approver"), w.token("carol", "approver")

	viewer := w.client(carol)
	if out := viewer.must("whoami"); !strings.Contains(out, "carol") || !strings.Contains(out, "approver") {
		t.Fatalf("whoami: %s", out)
	}
	if out := viewer.must("status"); !strings.Contains(out, "api") || !strings.Contains(out, "current") {
		t.Fatalf("status: %s", out)
	}
	var keys struct {
		Keys []struct {
			Name string `json:"name"`
			Age  *int64 `json:"age"`
		} `json:"keys"`
		Active []json.RawMessage `json:"active_rotations"`
	}
	if err := json.Unmarshal([]byte(viewer.must("status", "-o", "json")), &keys); err != nil || len(keys.Keys) != 1 || keys.Keys[0].Age == nil {
		t.Fatalf("status -o json: %v %+v (the age must be a number of seconds)", err, keys)
	}

	requester := w.client(bobOp)
	var r rotationView
	if err := json.Unmarshal([]byte(requester.must("rotate", "api", "--reason", "cli e2e", "-o", "json")), &r); err != nil || r.ID == "" {
		t.Fatalf("rotate -o json: %v", err)
	}
	out, errOut, code := w.client(bob).rekey("", "approve", r.ID)
	if code != 3 {
		t.Fatalf("the requester approving their own rotation: exit %d, want 3\n%s%s", code, out, errOut)
	}
	viewer.must("approve", r.ID, "--comment", "looks right")
	if done := w.waitRotation(r.ID, 20*time.Second); done.Phase != "done" {
		t.Fatalf("approved rotation ended %s", done.Phase)
	}
	desc := viewer.must("describe", "api")
	for _, want := range []string{"key api", "api-v2", "current", "start (1 approval(s) from bob, carol)", r.ID} {
		if !strings.Contains(desc, want) {
			t.Errorf("describe lacks %q:\n%s", want, desc)
		}
	}
	var trail struct {
		Events []auditEvent `json:"events"`
	}
	if err := json.Unmarshal([]byte(viewer.must("audit", "--rotation", r.ID, "-o", "json")), &trail); err != nil {
		t.Fatal(err)
	}
	actors := map[string]string{}
	for _, e := range trail.Events {
		actors[e.Action] = e.Actor
		if e.Action == "decision.approve" && e.Detail["via"] != "api" {
			t.Errorf("approval recorded via %q, want api", e.Detail["via"])
		}
	}
	if actors["rotation.created"] != "bob" || actors["decision.approve"] != "carol" {
		t.Errorf("rotation created by %q and approved by %q, want the principals bob and carol (trail %+v)",
			actors["rotation.created"], actors["decision.approve"], actors)
	}
	viewer.empty()
	requester.empty()
	w.scanForSecrets()
}

// Errors of the client mode keep the exit-code table: no credential is a
// usage error (2), a wrong one is refused (3), an unknown key is 4 for
// rotations as for rotate, and under -o json the error is a JSON object.
func TestCLIClientErrors(t *testing.T) {
	t.Parallel()
	w := newWorld(t, params{})
	w.start()
	w.bootstrap("api")
	op := w.client(w.token("ops@example.com", "operator"))
	for name, tc := range map[string]struct {
		sh   *shell
		args []string
		want int
	}{
		"no credential":                             {w.shell("REKEY_ADDR=http://" + w.AdminAddr()), []string{"status"}, 2},
		"wrong credential":                          {w.client("rk_not-a-token"), []string{"status"}, 3},
		"rotate an unknown key":                     {op, []string{"rotate", "nosuch"}, 4},
		"rotations of nosuch":                       {op, []string{"rotations", "--key", "nosuch"}, 4},
		"show an unknown id":                        {op, []string{"show", "rot_nope"}, 4},
		"describe an unknown key":                   {op, []string{"describe", "nosuch"}, 4},
		"decommission as an operator (responder's)": {op, []string{"decommission", "api", "--yes"}, 3},
	} {
		out, errOut, code := tc.sh.rekey("", tc.args...)
		if code != tc.want {
			t.Errorf("%s: exit %d, want %d\n%s%s", name, code, tc.want, out, errOut)
		}
	}
	// REKEY_ADDR at the public listener: not "unknown key" (4) but a
	// configuration mistake, said as such.
	public := w.shell("REKEY_ADDR=http://"+w.Addr(), "REKEY_TOKEN="+w.token("ops2@example.com", "operator"))
	if _, errOut, code := public.rekey("", "status"); code != 1 || !strings.Contains(errOut, "daemon.admin_listen") {
		t.Errorf("status against the public listener: exit %d, want 1 naming daemon.admin_listen: %s", code, errOut)
	}
	_, errOut, code := op.rekey("", "show", "rot_nope", "-o", "json")
	var e struct {
		Error string `json:"error"`
		Code  int    `json:"code"`
		Kind  string `json:"kind"`
	}
	if err := json.Unmarshal([]byte(errOut), &e); err != nil || code != 4 || e.Code != 4 || e.Kind != "not_found" || e.Error == "" {
		t.Fatalf("-o json error: exit %d, stderr %q (%v)", code, errOut, err)
	}
	op.empty()
}

// Without REKEY_ADDR, acting needs --break-glass; with it, the actor is
// the OS account on this host, and the trail says the store was opened
// directly.
func TestCLIBreakGlassRecordsTheOSUser(t *testing.T) {
	t.Parallel()
	w := newWorld(t, params{})
	sh := w.shell()
	out, errOut, code := sh.rekey("", "rotate", "api", "--bootstrap", "-c", w.cfg)
	if code != 2 || !strings.Contains(errOut, "--break-glass") {
		t.Fatalf("acting without REKEY_ADDR or --break-glass: exit %d, want 2 naming --break-glass\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(w.dir, "rekey.db")); !os.IsNotExist(err) {
		t.Fatalf("a refused command created the store (%v)", err)
	}
	sh.must("rotate", "api", "--bootstrap", "--wait", "--break-glass", "-c", w.cfg)
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	want := "break-glass:" + u.Username + "@" + host
	var trail struct {
		Events []auditEvent `json:"events"`
	}
	if err := json.Unmarshal([]byte(sh.must("audit", "-o", "json", "-c", w.cfg)), &trail); err != nil {
		t.Fatal(err)
	}
	var created, marked bool
	for _, e := range trail.Events {
		switch e.Action {
		case "rotation.created":
			created = e.Actor == want
		case "break-glass":
			marked = e.Actor == want && e.Detail["via"] == "break-glass" && strings.Contains(e.Detail["request"], "/v1/keys/api/rotate")
		}
	}
	if !created || !marked {
		t.Fatalf("the trail does not record the break-glass rotation as %s via break-glass: %+v", want, trail.Events)
	}
	sh.empty()
}

// The conventions of a CLI: help exits 0 with examples and arguments, a
// typo gets a suggestion, a missing configuration is a configuration error
// (2) in text and in JSON, and a read-only verb run from another directory
// finds the store beside its configuration, and creates none when there
// is none.
func TestCLIConventions(t *testing.T) {
	t.Parallel()
	w := newWorld(t, params{})
	sh := w.shell()
	for _, args := range [][]string{{"--help"}, {"status", "--help"}, {"help", "rotate"}} {
		out := sh.must(args...)
		if !strings.Contains(out, "Examples:") {
			t.Errorf("rekey %s: no examples:\n%s", strings.Join(args, " "), out)
		}
	}
	if out := sh.must("rotate", "--help"); !strings.Contains(out, "Arguments:") || !strings.Contains(out, "KEY") {
		t.Errorf("rotate --help does not describe its argument:\n%s", out)
	}
	if _, errOut, code := sh.rekey("", "rotat"); code != 2 || !strings.Contains(errOut, "Did you mean this?") || !strings.Contains(errOut, "\trotate\n") {
		t.Errorf("rekey rotat: exit %d, stderr %q; want 2 suggesting rotate", code, errOut)
	}
	for _, shellName := range []string{"bash", "zsh", "fish"} {
		if out := sh.must("completion", shellName); !strings.Contains(out, "rekey") {
			t.Errorf("completion %s printed no script", shellName)
		}
	}
	missing := filepath.Join(sh.dir, "nope.yaml")
	if _, errOut, code := sh.rekey("", "status", "-c", missing); code != 2 || !strings.Contains(errOut, "nope.yaml") {
		t.Errorf("missing config: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code := sh.rekey("", "status", "-c", missing, "-o", "json")
	var e struct {
		Code int    `json:"code"`
		Kind string `json:"kind"`
	}
	if err := json.Unmarshal([]byte(errOut), &e); err != nil || code != 2 || e.Code != 2 || e.Kind != "configuration" {
		t.Errorf("missing config under -o json: exit %d, stderr %q (%v)", code, errOut, err)
	}

	// A configuration with relative paths, read from another directory.
	conf := filepath.Join(w.dir, "rel")
	if err := os.MkdirAll(conf, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(conf, "rekey.yaml"), `
store: {type: sqlite, path: data/rekey.db}
issuers: [{name: demo, type: random, ledger: data/ledger.json}]
sinks: [{name: files, type: file, dir: data/secrets}]
keys: [{name: api, issuer: demo, sinks: [{sink: files}]}]
`)
	rel, err := filepath.Rel(sh.dir, filepath.Join(conf, "rekey.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"status", "plan", "rotations", "describe api"} {
		out, errOut, code := sh.rekey("", append(strings.Fields(verb), "-c", rel)...)
		if code != 1 || !strings.Contains(errOut, filepath.Join(conf, "data", "rekey.db")) {
			t.Errorf("%s without a store: exit %d, want 1 naming where it looked\n%s%s", verb, code, out, errOut)
		}
	}
	if _, err := os.Stat(filepath.Join(conf, "data")); !os.IsNotExist(err) {
		t.Fatalf("a read-only verb created %s (%v)", filepath.Join(conf, "data"), err)
	}
	sh.empty()
	sh.must("rotate", "api", "--bootstrap", "--wait", "--break-glass", "-c", rel)
	if out := sh.must("status", "-c", rel); !strings.Contains(out, "current") {
		t.Fatalf("status from another directory does not see the store beside the configuration:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(conf, "data", "secrets", "api.json")); err != nil {
		t.Fatalf("the file sink did not write beside the configuration: %v", err)
	}
	sh.empty()
}

// Through the admin listener's unix socket (0600, the daemon's own user):
// REKEY_ADDR=unix:///path; rotate --wait follows the rotation with plain
// timestamped lines when stderr is not a terminal, and exits 0 when done.
func TestCLIClientOverAUnixSocketWaits(t *testing.T) {
	t.Parallel()
	tmpl := strings.Replace(cfgTemplate, "admin_listen: 127.0.0.1:0", "admin_listen: unix:{{.Dir}}/admin.sock", 1)
	w := newWorldFrom(t, tmpl, func(w *world) any {
		return params{Dir: w.dir, Hook: w.hook.URL, MaxAge: "90d", Quiet: "2s", Watch: "0s", Sched: "@every 1h", Keys: []string{"api"}}
	})
	w.start()
	if !strings.HasPrefix(w.AdminAddr(), "unix:/") {
		t.Fatalf("admin address %q is not a socket", w.AdminAddr())
	}
	sh := w.shell("REKEY_ADDR=unix://"+strings.TrimPrefix(w.AdminAddr(), "unix:"), "REKEY_TOKEN="+adminToken)
	if out := sh.must("whoami"); !strings.Contains(out, "admin") {
		t.Fatalf("whoami over the socket: %s", out)
	}
	deadline := patient(20 * time.Second)
	for {
		var st struct {
			Keys []struct {
				Generation int `json:"generation"`
			} `json:"keys"`
		}
		if err := json.Unmarshal([]byte(sh.must("status", "-o", "json")), &st); err == nil && len(st.Keys) == 1 && st.Keys[0].Generation == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("api was not bootstrapped:\n%s", w.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	out, errOut, code := sh.rekey("", "rotate", "api", "--wait")
	if code != 0 || !strings.Contains(out, "phase=done") {
		t.Fatalf("rotate --wait: exit %d\n%s%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	sawDrain := false
	for _, l := range lines {
		stamp, rest, _ := strings.Cut(l, " ")
		if _, err := time.Parse(time.RFC3339, stamp); err != nil {
			t.Fatalf("progress line without a timestamp: %q", l)
		}
		if strings.Contains(rest, "draining") {
			sawDrain = true
		}
		if strings.Contains(l, "\r") {
			t.Fatalf("terminal control characters on a non-terminal: %q", l)
		}
	}
	if !sawDrain {
		t.Fatalf("no progress line while the rotation drained:\n%s", errOut)
	}
	sh.empty()
}
