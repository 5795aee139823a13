package secretref

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tok")
	if err := os.WriteFile(file, []byte("s3cr3t-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SECRETREF_TEST", "s3cr3t-env")
	tests := map[string]struct {
		ref     Ref
		want    string
		wantErr string
	}{
		"env":          {ref: Ref{Env: "SECRETREF_TEST"}, want: "s3cr3t-env"},
		"file":         {ref: Ref{File: file}, want: "s3cr3t-file"},
		"missing env":  {ref: Ref{Env: "SECRETREF_MISSING"}, wantErr: "SECRETREF_MISSING is not set"},
		"missing file": {ref: Ref{File: filepath.Join(dir, "nope")}, wantErr: "no such file"},
		"empty file":   {ref: Ref{File: empty}, wantErr: "is empty"},
		"unset":        {ref: Ref{}, want: ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := tc.ref.Resolve()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "s3cr3t") {
					t.Fatalf("error leaks the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Reveal() != tc.want {
				t.Fatalf("got %q, want %q", got.Reveal(), tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	if err := (Ref{Env: "A", File: "b"}).Validate("token", false); err == nil || !strings.HasPrefix(err.Error(), "token_env:") {
		t.Fatalf("both set: %v", err)
	}
	if err := (Ref{}).Validate("token", true); err == nil {
		t.Fatal("required but unset: no error")
	}
	if err := (Ref{}).Validate("token", false); err != nil {
		t.Fatalf("optional unset: %v", err)
	}
}

// A secret pasted into a *_env field is refused without being echoed, by
// Validate and by Resolve (doctor prints Resolve's error).
func TestPastedSecretInEnvFieldIsNeverEchoed(t *testing.T) {
	const pasted = "rk_live_S3CR3TVALUE-0123456789"
	r := Ref{Env: pasted}
	if err := r.Validate("token", true); err == nil || strings.Contains(err.Error(), pasted) || strings.Contains(err.Error(), "S3CR3T") {
		t.Fatalf("Validate: %v", err)
	}
	if _, err := r.Resolve(); err == nil || strings.Contains(err.Error(), "S3CR3T") {
		t.Fatalf("Resolve: %v", err)
	}
	for name, ok := range map[string]bool{"KA_TOKEN": true, "_x1": true, "1X": false, "a-b": false, "": false, "A B": false} {
		if ValidEnvName(name) != ok {
			t.Errorf("ValidEnvName(%q) = %v", name, !ok)
		}
	}
}
