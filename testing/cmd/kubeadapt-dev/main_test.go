package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		args  []string
		env   map[string]string
		token string // "" means random
	}{
		"random token": {args: []string{"-addr", "127.0.0.1:0"}},
		"env token":    {args: []string{"-addr", "127.0.0.1:0"}, env: map[string]string{"KUBEADAPT_ADMIN_TOKEN": "from-env"}, token: "from-env"},
		"file token":   {args: []string{"-addr", "127.0.0.1:0", "-admin-token-file", tokenFile}, env: map[string]string{"KUBEADAPT_ADMIN_TOKEN": "from-env"}, token: "from-file"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			pr, pw := io.Pipe()
			done := make(chan error, 1)
			go func() {
				err := run(ctx, tt.args, pw, io.Discard, func(k string) string { return tt.env[k] })
				_ = pw.Close()
				done <- err
			}()

			line, err := bufio.NewReader(pr).ReadString('\n')
			if err != nil {
				t.Fatalf("read announcement: %v", err)
			}
			var a announcement
			if err := json.Unmarshal([]byte(line), &a); err != nil {
				t.Fatalf("announcement %q: %v", line, err)
			}
			go func() { _, _ = io.Copy(io.Discard, pr) }()
			if tt.token != "" && a.AdminToken != tt.token || len(a.AdminToken) == 0 {
				t.Errorf("admin_token = %q, want %q", a.AdminToken, tt.token)
			}
			if !strings.HasPrefix(a.URL, "http://127.0.0.1:") || a.AdminURL != a.URL+"/admin/v1" ||
				a.APIURL != a.URL+"/v1" || a.MetricsURL != a.URL+"/metrics" || "http://"+a.Addr != a.URL {
				t.Errorf("announcement = %+v", a)
			}

			req, err := http.NewRequest(http.MethodGet, a.AdminURL+"/api-keys", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+a.AdminToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET admin keys = %d", resp.StatusCode)
			}

			cancel()
			if err := <-done; err != nil {
				t.Fatalf("run: %v", err)
			}
			if _, err := http.Get(a.URL + "/healthz"); err == nil {
				t.Error("server still answers after cancel")
			}
		})
	}
}

func TestRunErrors(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := map[string][]string{
		"unknown flag":     {"-nope"},
		"extra argument":   {"-addr", "127.0.0.1:0", "extra"},
		"bad address":      {"-addr", "not-an-address"},
		"missing file":     {"-addr", "127.0.0.1:0", "-admin-token-file", filepath.Join(t.TempDir(), "missing")},
		"empty token file": {"-addr", "127.0.0.1:0", "-admin-token-file", empty},
	}
	for name, args := range tests {
		t.Run(name, func(t *testing.T) {
			if err := run(t.Context(), args, io.Discard, io.Discard, func(string) string { return "" }); err == nil {
				t.Fatal("run succeeded")
			}
		})
	}
}
