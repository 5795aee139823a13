// Command kubeadapt-dev runs the local Kubeadapt stand-in
// (testing/kubeadapt) as a process, for demos and end-to-end tests.
// Once listening it prints one JSON line to stdout with its addresses and
// admin token, then serves until SIGINT or SIGTERM. Requests are logged to
// stderr.
//
//	kubeadapt-dev -addr 127.0.0.1:0
//	{"url":"http://127.0.0.1:40123","admin_url":"http://127.0.0.1:40123/admin/v1", …,"admin_token":"…"}
//
// The admin token comes from -admin-token-file, else $KUBEADAPT_ADMIN_TOKEN,
// else is random; it is never taken from the command line, where ps shows it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/rekeyhq/rekey/testing/kubeadapt"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "kubeadapt-dev:", err)
		os.Exit(1)
	}
}

// announcement is the single JSON line printed on startup.
type announcement struct {
	URL        string `json:"url"`
	Addr       string `json:"addr"`
	AdminURL   string `json:"admin_url"`
	APIURL     string `json:"api_url"`
	MetricsURL string `json:"metrics_url"`
	AdminToken string `json:"admin_token"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("kubeadapt-dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8089", "listen address (port 0 picks a free port)")
	tokenFile := fs.String("admin-token-file", "", "file holding the admin API token (default $KUBEADAPT_ADMIN_TOKEN, else random)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	token := getenv("KUBEADAPT_ADMIN_TOKEN")
	if *tokenFile != "" {
		raw, err := os.ReadFile(*tokenFile)
		if err != nil {
			return fmt.Errorf("read admin token file: %w", err)
		}
		if token = strings.TrimSpace(string(raw)); token == "" {
			return errors.New("admin token file is empty")
		}
	}

	s := kubeadapt.New(kubeadapt.Options{
		AdminToken: token,
		Logger:     slog.New(slog.NewTextHandler(stderr, nil)).With("component", "kubeadapt-dev"),
	})
	if err := s.Start(*addr); err != nil {
		return err
	}
	defer s.Close()

	url := s.URL()
	line, err := json.Marshal(announcement{
		URL:        url,
		Addr:       strings.TrimPrefix(url, "http://"),
		AdminURL:   url + "/admin/v1",
		APIURL:     url + "/v1",
		MetricsURL: url + "/metrics",
		AdminToken: s.AdminToken(),
	})
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(stdout, "%s\n", line); err != nil {
		return fmt.Errorf("announce: %w", err)
	}
	<-ctx.Done()
	return nil
}
