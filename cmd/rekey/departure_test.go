package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// departure undo posts to /v1/departures/{who}/undo, the person escaped
// as one path segment, and prints the names it cleared.
func TestDepartureUndo(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.EscapedPath() != "/v1/departures/carol%2Fx@example.com/undo" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"undone": ["carol/x@example.com", "u0carol"], "note": "their revoked API tokens stay revoked"}`)
	}))
	defer srv.Close()
	var out, errb strings.Builder
	c := &cli{ctx: context.Background(), stdin: strings.NewReader(""), stdout: &out, stderr: &errb, tty: func() bool { return false },
		getenv: func(k string) string {
			return map[string]string{"REKEY_ADDR": srv.URL, "REKEY_TOKEN": "rk_test"}[k]
		}}
	root := c.root()
	root.SetArgs([]string{"departure", "undo", "carol/x@example.com"})
	if err := root.Execute(); err != nil {
		t.Fatalf("%v: %s", err, errb.String())
	}
	if want := "departure of carol/x@example.com/u0carol undone; their revoked API tokens stay revoked"; !strings.Contains(out.String(), want) {
		t.Fatalf("output %q, want %q", out.String(), want)
	}
}
