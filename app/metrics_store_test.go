package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rekeyhq/rekey/config"
	"github.com/rekeyhq/rekey/rotator"
)

// A rotation driven by the break-glass CLI — an engine of its own inside
// the CLI's process, against the daemon's store — shows in the daemon's
// /metrics. The scraped daemon's engine never runs here, so only the store
// can have told it.
func TestDaemonMetricsCountBreakGlassRotations(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "admin-token"), []byte(testBootstrap), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(fmt.Appendf(nil, `
daemon: {listen: "127.0.0.1:0", admin_listen: "127.0.0.1:0", admin_token_file: %[1]s/admin-token, poll_interval: 20ms, retry_base: 50ms, retry_max: 200ms}
store: {type: sqlite, path: %[1]s/rekey.db}
issuers: [{name: demo, type: random, ledger: %[1]s/ledger.json}]
sinks: [{name: files, type: file, dir: %[1]s/secrets}]
keys:
  - {name: db, issuer: demo, sinks: [{sink: files}]}
`, dir))
	if err != nil {
		t.Fatal(err)
	}
	daemon, err := Build(context.Background(), cfg, slog.New(slog.DiscardHandler), BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { daemon.Close() })
	admin := httptest.NewServer(daemon.AdminHandler())
	t.Cleanup(admin.Close)

	// The CLI, as `rekey rotate --wait --break-glass` builds it.
	cli, err := Build(context.Background(), cfg, slog.New(slog.DiscardHandler), BuildOptions{Owner: "cli-test", EnqueueOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	bg := httptest.NewServer(cli.BreakGlassHandler(BreakGlassPrincipal()))
	t.Cleanup(bg.Close)
	e := &authEnv{t: t, d: cli}
	for _, trigger := range []string{"bootstrap", "manual"} {
		var id string
		if trigger == "bootstrap" {
			r, err := cli.Engine.Trigger(context.Background(), rotator.TriggerRequest{Key: "db", Trigger: rotator.TriggerBootstrap, Actor: "setup"})
			if err != nil {
				t.Fatal(err)
			}
			id = r.ID
		} else {
			a := e.call(bg, "", "POST", "/v1/keys/db/rotate", map[string]string{"reason": "incident"})
			if a.status != http.StatusCreated {
				t.Fatalf("rotate: %d %v", a.status, a.body)
			}
			id, _ = a.body["id"].(string)
		}
		waitFor(t, trigger+" rotation done", func() bool {
			cli.Engine.RunOnce(context.Background())
			r, err := cli.Store.GetRotation(context.Background(), id)
			return err == nil && r.Phase == rotator.PhaseDone
		})
	}

	want := []string{
		`rekey_credentials_minted_total{key="db"} 2`,
		`rekey_credentials_revoked_total{key="db"} 1`,
		`rekey_rotations_total{mode="staged",outcome="done",trigger="manual"} 1`,
		`rekey_rotations_total{mode="staged",outcome="done",trigger="bootstrap"} 1`,
	}
	var body string
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the daemon's last /metrics:\n%s", body)
		}
	})
	waitFor(t, "the daemon's /metrics to count the CLI's rotations", func() bool {
		resp, err := http.Get(admin.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		for _, w := range want {
			if !strings.Contains(body, "\n"+w+"\n") {
				return false
			}
		}
		return true
	})
}
