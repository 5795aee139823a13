package random

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rekeyhq/rekey/rotator"
)

func newIssuer(t *testing.T, path string, logs io.Writer) *Issuer {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Ledger = path
	if logs == nil {
		logs = io.Discard
	}
	iss, err := New(cfg, slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

func mint(t *testing.T, iss *Issuer, key, name string) rotator.Minted {
	t.Helper()
	m, err := iss.Mint(context.Background(), rotator.MintRequest{Key: key, Name: name, Generation: 1})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMintFormatAndID(t *testing.T) {
	iss := newIssuer(t, filepath.Join(t.TempDir(), "ledger.json"), nil)
	m := mint(t, iss, "kubeadapt", "kubeadapt-v1")
	if len(m.ID) != len("rnd_")+16 || !strings.HasPrefix(m.ID, "rnd_") || strings.Trim(m.ID[4:], classHex) != "" {
		t.Fatalf("id %q, want rnd_<16 hex>", m.ID)
	}
	raw := m.Secret.Reveal()
	if !strings.HasPrefix(raw, "ka_live_") || len(raw) != len("ka_live_")+32 || strings.Trim(raw[8:], classBase62) != "" {
		t.Fatalf("secret does not match %s", DefaultFormat)
	}
}

// TestLedgerNeverHoldsSecret checks the file's contents and permissions.
func TestLedgerNeverHoldsSecret(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "ledger.json") // directory created by New
	var logs bytes.Buffer
	iss := newIssuer(t, path, &logs)
	m := mint(t, iss, "k", "k-v1")
	if err := iss.Revoke(context.Background(), rotator.CredentialRef{Key: "k", ID: m.ID}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw := m.Secret.Reveal()
	if bytes.Contains(b, []byte(raw)) || bytes.Contains(logs.Bytes(), []byte(raw)) {
		t.Fatal("secret value written to the ledger or the log")
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 3 || lines[0] != `{"version":2}` {
		t.Fatalf("ledger = %s, want a header, a mint and a revoke line", b)
	}
	for _, l := range lines {
		if !json.Valid([]byte(l)) {
			t.Fatalf("ledger line %q is not JSON", l)
		}
	}
	got, err := ReadLedger(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Fingerprint != m.Secret.Fingerprint() || got[0].RevokedAt.IsZero() {
		t.Fatalf("ledger = %s", b)
	}
	for _, field := range []string{`"id"`, `"key"`, `"name"`, `"fingerprint"`, `"created_at"`, `"revoked_at"`} {
		if !bytes.Contains(b, []byte(field)) {
			t.Errorf("ledger lacks %s: %s", field, b)
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o600 {
		t.Fatalf("ledger mode %o, want 600", perm)
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*tmp*"))
	if len(leftovers) != 0 {
		t.Fatalf("temporary files left behind: %v", leftovers)
	}
}

func TestLedgerSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.json")
	ctx := context.Background()
	first := newIssuer(t, path, nil)
	live := mint(t, first, "k", "k-v1")
	gone := mint(t, first, "k", "k-v2")
	if err := first.Revoke(ctx, rotator.CredentialRef{Key: "k", ID: gone.ID}); err != nil {
		t.Fatal(err)
	}

	// A new instance on the same path stands for the daemon after a crash.
	second := newIssuer(t, path, nil)
	if revoked, err := second.IsRevoked(gone.ID); err != nil || !revoked {
		t.Fatalf("IsRevoked(gone) = %v, %v; want true", revoked, err)
	}
	if revoked, err := second.IsRevoked(live.ID); err != nil || revoked {
		t.Fatalf("IsRevoked(live) = %v, %v; want false", revoked, err)
	}
	if ids, err := second.FindByName(ctx, "k", "k-v1"); err != nil || len(ids) != 1 || ids[0] != live.ID {
		t.Fatalf("FindByName = %v, %v", ids, err)
	}
	if err := second.Verify(ctx, "k", live.Secret, nil); err != nil {
		t.Fatalf("Verify(live) after reopen: %v", err)
	}
}

func TestRevokeIdempotent(t *testing.T) {
	tests := map[string]struct {
		id       func(m rotator.Minted) string
		times    int
		wantLogs string
	}{
		"once":       {id: func(m rotator.Minted) string { return m.ID }, times: 1},
		"twice":      {id: func(m rotator.Minted) string { return m.ID }, times: 2},
		"unknown id": {id: func(rotator.Minted) string { return "rnd_0000000000000000" }, times: 2, wantLogs: "unknown credential"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ledger.json")
			var logs bytes.Buffer
			iss := newIssuer(t, path, &logs)
			m := mint(t, iss, "k", "k-v1")
			id := tc.id(m)
			var stamp []byte
			for n := range tc.times {
				if err := iss.Revoke(context.Background(), rotator.CredentialRef{Key: "k", ID: id}); err != nil {
					t.Fatalf("revoke #%d: %v", n+1, err)
				}
				b, _ := os.ReadFile(path)
				if n > 0 && !bytes.Equal(b, stamp) {
					t.Fatal("a repeated revoke rewrote the ledger")
				}
				stamp = b
			}
			if tc.wantLogs != "" && !strings.Contains(logs.String(), tc.wantLogs) {
				t.Fatalf("logs %q lack %q", logs.String(), tc.wantLogs)
			}
			if id == m.ID {
				if revoked, err := iss.IsRevoked(id); err != nil || !revoked {
					t.Fatalf("IsRevoked = %v, %v", revoked, err)
				}
			} else if _, err := iss.IsRevoked(id); !errors.Is(err, rotator.ErrNotFound) {
				t.Fatalf("IsRevoked(unknown) err = %v, want ErrNotFound", err)
			}
		})
	}
}

func TestFindByName(t *testing.T) {
	ctx := context.Background()
	iss := newIssuer(t, filepath.Join(t.TempDir(), "ledger.json"), nil)
	a1 := mint(t, iss, "a", "a-v1")
	a1bis := mint(t, iss, "a", "a-v1") // a retried mint after a crash
	a2 := mint(t, iss, "a", "a-v2")
	b1 := mint(t, iss, "b", "a-v1") // same name, other key
	if err := iss.Revoke(ctx, rotator.CredentialRef{ID: a2.ID}); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		key, name string
		want      []string
	}{
		"two live":     {key: "a", name: "a-v1", want: []string{a1.ID, a1bis.ID}},
		"revoked only": {key: "a", name: "a-v2", want: nil},
		"other key":    {key: "b", name: "a-v1", want: []string{b1.ID}},
		"unknown":      {key: "c", name: "c-v1", want: nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := iss.FindByName(ctx, tc.key, tc.name)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("FindByName(%s, %s) = %v, want %v", tc.key, tc.name, got, tc.want)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	ctx := context.Background()
	iss := newIssuer(t, filepath.Join(t.TempDir(), "ledger.json"), nil)
	live := mint(t, iss, "k", "k-v1")
	revoked := mint(t, iss, "k", "k-v2")
	if err := iss.Revoke(ctx, rotator.CredentialRef{ID: revoked.ID}); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		key     string
		secret  rotator.Secret
		wantErr string
	}{
		"live":      {key: "k", secret: live.Secret},
		"revoked":   {key: "k", secret: revoked.Secret, wantErr: "is revoked"},
		"unknown":   {key: "k", secret: rotator.NewSecret("ka_live_notminted"), wantErr: "not a credential"},
		"other key": {key: "other", secret: live.Secret, wantErr: "not a credential"},
		"empty":     {key: "k", secret: rotator.Secret{}, wantErr: "empty secret"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := iss.Verify(ctx, tc.key, tc.secret, nil)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if !rotator.IsPermanent(err) {
				t.Fatalf("err %v is not permanent", err)
			}
			if raw := tc.secret.Reveal(); raw != "" && strings.Contains(err.Error(), raw) {
				t.Fatal("error contains the secret")
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.json")
	if err := os.WriteFile(corrupt, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	future := filepath.Join(dir, "future.json")
	if err := os.WriteFile(future, []byte(`{"version":99,"credentials":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		cfg     Config
		wantErr string
	}{
		"bad format":  {cfg: Config{Format: "{hex:0}", Ledger: filepath.Join(dir, "a.json")}, wantErr: "format: "},
		"no ledger":   {cfg: Config{Format: DefaultFormat}, wantErr: "ledger: required"},
		"corrupt":     {cfg: Config{Format: DefaultFormat, Ledger: corrupt}, wantErr: "decode ledger"},
		"new version": {cfg: Config{Format: DefaultFormat, Ledger: future}, wantErr: "unsupported version 99"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := New(tc.cfg, nil)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestMintFailsWhenLedgerUnwritable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.json")
	iss := newIssuer(t, path, nil)
	// A directory where the ledger should be makes the rename fail, even
	// for root.
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path, "keep"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := iss.Mint(context.Background(), rotator.MintRequest{Key: "k", Name: "k-v1"}); err == nil {
		t.Fatal("mint succeeded without a ledger record")
	}
	if ids, _ := iss.FindByName(context.Background(), "k", "k-v1"); len(ids) != 0 {
		t.Fatalf("unrecorded credential listed: %v", ids)
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*tmp*"))
	if len(leftovers) != 0 {
		t.Fatalf("temporary files left behind: %v", leftovers)
	}
}

func TestConcurrentMints(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.json")
	iss := newIssuer(t, path, nil)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := iss.Mint(context.Background(), rotator.MintRequest{Key: "k", Name: "k-v1"}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	reopened := newIssuer(t, path, nil)
	if ids, _ := reopened.FindByName(context.Background(), "k", "k-v1"); len(ids) != 20 {
		t.Fatalf("%d credentials after reopen, want 20", len(ids))
	}
}
