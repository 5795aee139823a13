package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// breaker release prints each contained rotation with its key, released
// or why not, and exits 3 when one was not released.
func TestBreakerReleaseReportsPerKey(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/breaker/release" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"released": ["rot_a"], "counting_restarted": false, "results": [
			{"rotation": "rot_a", "key": "payments-eu", "released": true},
			{"rotation": "rot_b", "key": "payments-us", "released": false, "error": "rotation \"rot_b\": already decided"}]}`)
	}))
	defer srv.Close()
	var out, errb strings.Builder
	c := &cli{ctx: context.Background(), stdin: strings.NewReader(""), stdout: &out, stderr: &errb, tty: func() bool { return false },
		getenv: func(k string) string {
			return map[string]string{"REKEY_ADDR": srv.URL, "REKEY_TOKEN": "rk_test"}[k]
		}}
	root := c.root()
	root.SetArgs([]string{"breaker", "release"})
	err := root.Execute()
	if code, _ := classify(err); code != exitRefused {
		t.Fatalf("exit %d (%v), want %d when one rotation was not released", code, err, exitRefused)
	}
	for _, want := range []string{"payments-eu (rot_a): released", "payments-us (rot_b): NOT released: rotation \"rot_b\": already decided", "keeps counting"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
