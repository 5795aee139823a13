package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	old := version
	t.Cleanup(func() { version = old })
	version = "v9.8.7"
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"version"}, nil, &out, &errOut); code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
	if !strings.HasPrefix(out.String(), "rekey v9.8.7") {
		t.Fatalf("version printed %q, want the stamped version", out.String())
	}
}

// TestVersionStampedCommit: make build and the Dockerfile stamp the commit.
func TestVersionStampedCommit(t *testing.T) {
	oldV, oldC := version, commit
	t.Cleanup(func() { version, commit = oldV, oldC })
	version, commit = "v1.0.0", "0123abcd"
	var out bytes.Buffer
	if code := run(context.Background(), []string{"version"}, nil, &out, &out); code != exitOK || out.String() != "rekey v1.0.0 (0123abcd)\n" {
		t.Fatalf("exit %d, printed %q", code, out.String())
	}
}

// TestVersionJSON: -o json prints JSON, like every other verb.
func TestVersionJSON(t *testing.T) {
	oldV, oldC := version, commit
	t.Cleanup(func() { version, commit = oldV, oldC })
	version, commit = "v1.0.0", "0123abcd"
	var out bytes.Buffer
	if code := run(context.Background(), []string{"version", "-o", "json"}, nil, &out, &out); code != exitOK || out.String() != `{"version":"v1.0.0","commit":"0123abcd"}`+"\n" {
		t.Fatalf("exit %d, printed %q", code, out.String())
	}
}
