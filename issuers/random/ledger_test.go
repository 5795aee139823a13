package random

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// TestLedgerIsAppendOnly: every mint and revoke adds one line and leaves
// what was written before byte for byte.
func TestLedgerIsAppendOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.json")
	iss := newIssuer(t, path, nil)
	var before []byte
	check := func(what string) {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, before) || bytes.Count(b, []byte("\n")) != bytes.Count(before, []byte("\n"))+1 && len(before) > 0 {
			t.Fatalf("%s did not append exactly one line:\nbefore %q\nafter  %q", what, before, b)
		}
		before = b
	}
	m1 := mint(t, iss, "k", "k-v1")
	check("first mint")
	mint(t, iss, "k", "k-v2")
	check("second mint")
	if err := iss.Revoke(context.Background(), rotator.CredentialRef{Key: "k", ID: m1.ID}); err != nil {
		t.Fatal(err)
	}
	check("revoke")
}

// TestLedgerTornLastLine: a crash in the middle of an append leaves a torn
// last line. The issuer starts, reports it, drops it from the file, and the
// next append follows the last whole record.
func TestLedgerTornLastLine(t *testing.T) {
	tests := map[string]string{
		"no newline":      `{"op":"revoke","id":"rnd_`,
		"garbage":         "\x00\x00\x00\x00\n",
		"whole but wrong": `{"op":"revoke"}` + "\n",
	}
	for name, tail := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ledger.json")
			first := newIssuer(t, path, nil)
			m := mint(t, first, "k", "k-v1")
			good, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, append(bytes.Clone(good), tail...), 0o600); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			second := newIssuer(t, path, &logs)
			if !strings.Contains(logs.String(), "torn record") || !strings.Contains(logs.String(), fmt.Sprintf(`"bytes":%d`, len(tail))) {
				t.Fatalf("the torn line was not reported: %s", logs.String())
			}
			if b, _ := os.ReadFile(path); !bytes.Equal(b, good) {
				t.Fatalf("torn line left in the file: %q", b)
			}
			if err := second.Revoke(context.Background(), rotator.CredentialRef{Key: "k", ID: m.ID}); err != nil {
				t.Fatal(err)
			}
			third := newIssuer(t, path, nil)
			if revoked, err := third.IsRevoked(m.ID); err != nil || !revoked {
				t.Fatalf("after repair and revoke: IsRevoked = %v, %v", revoked, err)
			}
		})
	}
}

// TestLedgerDamagedInTheMiddle: a bad line that is not the last one is not
// a torn write but damage; the issuer refuses to start rather than forget
// a revocation.
func TestLedgerDamagedInTheMiddle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.json")
	iss := newIssuer(t, path, nil)
	mint(t, iss, "k", "k-v1")
	b, _ := os.ReadFile(path)
	lines := strings.SplitAfter(string(b), "\n")
	damaged := lines[0] + "{oops}\n" + strings.Join(lines[1:], "")
	if err := os.WriteFile(path, []byte(damaged), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Ledger = path
	if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), "line 2 is not a record") {
		t.Fatalf("err = %v, want line 2 reported", err)
	}
}

// TestLedgerConvertsVersion1: a single-document ledger of earlier releases
// is read, converted to the log once, and keeps every revocation.
func TestLedgerConvertsVersion1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.json")
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	v1 := `{
  "version": 1,
  "credentials": [
    {"id": "rnd_1", "key": "k", "name": "k-v1", "fingerprint": "fp1", "created_at": "2026-01-02T03:04:05Z", "revoked_at": "2026-01-02T03:04:05Z"},
    {"id": "rnd_2", "key": "k", "name": "k-v2", "fingerprint": "fp2", "created_at": "2026-01-02T03:04:05Z"}
  ]
}
`
	if err := os.WriteFile(path, []byte(v1), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	iss := newIssuer(t, path, &logs)
	if !strings.Contains(logs.String(), "converted the ledger") {
		t.Fatalf("conversion not logged: %s", logs.String())
	}
	if r, err := iss.IsRevoked("rnd_1"); err != nil || !r {
		t.Fatalf("rnd_1 revoked = %v, %v", r, err)
	}
	if r, err := iss.IsRevoked("rnd_2"); err != nil || r {
		t.Fatalf("rnd_2 revoked = %v, %v", r, err)
	}
	got, err := ReadLedger(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[0].RevokedAt.Equal(at) || !got[1].RevokedAt.IsZero() {
		t.Fatalf("converted ledger = %+v", got)
	}
	if b, _ := os.ReadFile(path); !strings.HasPrefix(string(b), `{"version":2}`+"\n") {
		t.Fatalf("not converted: %s", b)
	}
}

// BenchmarkLedgerRevoke revokes one credential of a ledger that already
// holds `size` credentials: the cost must not grow with the size (it was a
// rewrite of the whole file, ~28 ms at 10,000).
func BenchmarkLedgerRevoke(b *testing.B) {
	for _, size := range []int{100, 10_000} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.Ledger = filepath.Join(b.TempDir(), "ledger.json")
			iss, err := New(cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			ids := make([]string, 0, size+b.N)
			for i := range size {
				m, err := iss.Mint(ctx, rotator.MintRequest{Key: fmt.Sprintf("k%d", i), Name: "v1"})
				if err != nil {
					b.Fatal(err)
				}
				ids = append(ids, m.ID)
			}
			b.ResetTimer()
			i := 0
			for b.Loop() {
				if err := iss.Revoke(ctx, rotator.CredentialRef{ID: ids[i%len(ids)]}); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
