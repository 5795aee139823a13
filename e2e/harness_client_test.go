package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"strings"
)

// The world's clients of the daemon: the rekey CLI and the admin API.

// cli runs a rekey command in break-glass mode (-c and --break-glass are
// appended) and returns its stdout and stderr together, and
// the exit code.
func (w *world) cli(stdin string, args ...string) (string, int) {
	w.t.Helper()
	out, errOut, code := w.run(stdin, args...)
	return out + errOut, code
}

// cliStdout is cli with stdout alone (for -o json).
func (w *world) cliStdout(stdin string, args ...string) (string, int) {
	w.t.Helper()
	out, _, code := w.run(stdin, args...)
	return out, code
}

func (w *world) run(stdin string, args ...string) (string, string, int) {
	w.t.Helper()
	cmd := exec.Command(binary, append(args, "--break-glass", "-c", w.cfg)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		w.t.Fatal(err)
	}
	w.record(out.Bytes())
	w.record(errb.Bytes())
	return out.String(), errb.String(), code
}

// api calls the admin API and decodes the JSON answer.
func (w *world) api(method, path string, body any, out any) int {
	w.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+w.AdminAddr()+path, rd)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	w.record(b)
	if out != nil {
		_ = json.Unmarshal(b, out)
	}
	return resp.StatusCode
}
