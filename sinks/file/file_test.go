package file

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/sinks/sinktest"
)

func TestConformance(t *testing.T) {
	sinktest.Run(t, harness(t, t.TempDir()))
}

// harness wires the conformance suite to a directory; the independent
// reader is a plain read of the JSON document.
func harness(t *testing.T, dir string) sinktest.Harness {
	var n atomic.Int64
	file := func(tgt rotator.Target) string { return filepath.Join(dir, tgt.Path+".json") }
	return sinktest.Harness{
		NewSink: func(t *testing.T, opts sinktest.Options) rotator.Sink {
			s, err := New(Config{Dir: dir, Adopt: opts.Adopt}, nil)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		NewTarget: func(t *testing.T) rotator.Target {
			k := fmt.Sprintf("key-%d", n.Add(1))
			return rotator.Target{Key: k, Path: "team/" + k}
		},
		ReadCurrent: func(_ context.Context, tgt rotator.Target) (string, bool, error) {
			var doc struct {
				Current *struct {
					Value string `json:"value"`
				} `json:"current"`
			}
			raw, err := os.ReadFile(file(tgt))
			if errors.Is(err, fs.ErrNotExist) {
				return "", false, nil
			}
			if err != nil {
				return "", false, err
			}
			if err := json.Unmarshal(raw, &doc); err != nil {
				return "", false, fmt.Errorf("consumer cannot parse %s: %v", file(tgt), err)
			}
			if doc.Current == nil || doc.Current.Value == "" {
				return "", false, nil
			}
			return doc.Current.Value, true, nil
		},
		CreateUnmanaged: func(_ context.Context, tgt rotator.Target, value string) error {
			raw, _ := json.Marshal(map[string]any{"key": tgt.Key, "current": map[string]string{"value": value}})
			if err := os.MkdirAll(filepath.Dir(file(tgt)), 0o700); err != nil {
				return err
			}
			return os.WriteFile(file(tgt), raw, 0o600)
		},
		WriteMark: func(_ context.Context, tgt rotator.Target) (string, error) {
			fi, err := os.Stat(file(tgt))
			if errors.Is(err, fs.ErrNotExist) {
				return "absent", nil
			}
			if err != nil {
				return "", err
			}
			st := fi.Sys().(*syscall.Stat_t)
			return fmt.Sprintf("ino=%d mtime=%d size=%d", st.Ino, fi.ModTime().UnixNano(), fi.Size()), nil
		},
		ForeignWrite: func(_ context.Context, tgt rotator.Target, n int) error {
			return editJSON(file(tgt), func(m map[string]any) { m["foreign"] = n })
		},
		ForeignRead: func(_ context.Context, tgt rotator.Target) (int, error) {
			var m struct {
				Foreign int `json:"foreign"`
			}
			raw, err := os.ReadFile(file(tgt))
			if err != nil {
				return 0, err
			}
			return m.Foreign, json.Unmarshal(raw, &m)
		},
		Interleave: func(s rotator.Sink, fn func()) { s.(*Sink).hook.Store(&fn) },
	}
}

// editJSON rewrites a JSON document the way another program would:
// read, change, write a temporary file, rename.
func editJSON(path string, edit func(map[string]any)) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return err
	}
	edit(m)
	out, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp := path + ".foreign"
	if err := os.WriteFile(tmp, out, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func newSink(t *testing.T, cfg Config) *Sink {
	t.Helper()
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func delivery(gen int, value, old string) rotator.Delivery {
	d := rotator.Delivery{
		RotationID: fmt.Sprintf("rot-%d", gen), Generation: gen,
		Fingerprint: rotator.Fingerprint(value), Secret: rotator.NewSecret(value),
		OldGeneration: gen - 1,
	}
	if old != "" {
		d.OldFingerprint = rotator.Fingerprint(old)
	}
	return d
}

func TestDocumentFormatAndModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "secrets")
	s := newSink(t, Config{Dir: dir})
	ctx := context.Background()
	tgt := rotator.Target{Key: "billing", Path: "team/billing"}
	d1, d2 := delivery(1, "ka_live_one", ""), delivery(2, "ka_live_two", "ka_live_one")
	for _, step := range []func() error{
		func() error { return s.Stage(ctx, tgt, d1) },
		func() error { return s.Stage(ctx, tgt, d2) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "team", "billing.json")
	for p, want := range map[string]fs.FileMode{dir: 0o700, filepath.Join(dir, "team"): 0o700, path: 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("mode of %s = %o, want %o", p, got, want)
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if string(doc["managed_by"]) != `"rekey"` || string(doc["key"]) != `"billing"` {
		t.Errorf("marker and key: %s %s", doc["managed_by"], doc["key"])
	}
	var cur, pend map[string]any
	_ = json.Unmarshal(doc["current"], &cur)
	_ = json.Unmarshal(doc["pending"], &pend)
	if cur["value"] != "ka_live_one" || cur["generation"] != 1.0 || cur["fingerprint"] != d1.Fingerprint || cur["updated_at"] == nil {
		t.Errorf("current entry = %v", cur)
	}
	if pend["value"] != "ka_live_two" || pend["generation"] != 2.0 || pend["fingerprint"] != d2.Fingerprint {
		t.Errorf("pending entry = %v", pend)
	}
	if _, ok := doc["previous"]; ok {
		t.Error("a document without a previous value has a previous field")
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "team"))
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestUnknownFieldsSurvive(t *testing.T) {
	dir := t.TempDir()
	s := newSink(t, Config{Dir: dir})
	ctx := context.Background()
	tgt := rotator.Target{Key: "k", Path: "k"}
	if err := s.Stage(ctx, tgt, delivery(1, "v1", "")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "k.json")
	if err := editJSON(path, func(m map[string]any) { m["endpoint"] = "https://api.example" }); err != nil {
		t.Fatal(err)
	}
	d := delivery(2, "v2", "v1")
	for _, err := range []error{s.Stage(ctx, tgt, d), s.Promote(ctx, tgt, d), s.Cleanup(ctx, tgt, d)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	var m map[string]any
	raw, _ := os.ReadFile(path)
	_ = json.Unmarshal(raw, &m)
	if m["endpoint"] != "https://api.example" {
		t.Fatalf("a field rekey does not own was lost: %s", raw)
	}
}

func TestRefusesUnmanagedFiles(t *testing.T) {
	cases := map[string]struct {
		content string
		adopt   bool
		wantErr bool
	}{
		"not JSON":                     {content: "API_KEY=abc\n", wantErr: true},
		"JSON without marker":          {content: `{"api_key":"abc"}`, wantErr: true},
		"marker of another tool":       {content: `{"managed_by":"terraform"}`, wantErr: true},
		"malformed managed doc":        {content: `{"managed_by":"rekey","current":"x"}`, wantErr: true},
		"not JSON, adopted":            {content: "API_KEY=abc\n", adopt: true},
		"JSON without marker, adopted": {content: `{"api_key":"abc"}`, adopt: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "k.json")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			s := newSink(t, Config{Dir: dir, Adopt: tc.adopt})
			err := s.Stage(context.Background(), rotator.Target{Key: "k"}, delivery(1, "ka_live_x", ""))
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), path) || !rotator.IsPermanent(err) {
					t.Fatalf("Stage = %v, want a permanent error naming %s", err, path)
				}
				if raw, _ := os.ReadFile(path); string(raw) != tc.content {
					t.Fatalf("a refused file was changed: %q", raw)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			st, err := s.Inspect(context.Background(), rotator.Target{Key: "k"})
			if err != nil || !st.Managed || st.Current != rotator.Fingerprint("ka_live_x") {
				t.Fatalf("Inspect after adoption = %+v, %v", st, err)
			}
		})
	}
}

func TestRefusesPathsOutsideDir(t *testing.T) {
	s := newSink(t, Config{Dir: t.TempDir()})
	for _, p := range []string{"../escape", "/etc/passwd", "a/../../b", ""} {
		err := s.Stage(context.Background(), rotator.Target{Path: p}, delivery(1, "ka_live_x", ""))
		if err == nil || !rotator.IsPermanent(err) {
			t.Errorf("Stage to %q = %v, want a permanent error", p, err)
		}
	}
}

// TestConcurrentSinksSamePath: two sinks (say, two keys misconfigured onto
// one file, or two goroutines of the engine) serialise on the path lock;
// every staged value ends in the document exactly once.
func TestConcurrentSinksSamePath(t *testing.T) {
	dir := t.TempDir()
	a, b := newSink(t, Config{Dir: dir}), newSink(t, Config{Dir: dir})
	ctx := context.Background()
	tgt := rotator.Target{Key: "k"}
	if err := a.Stage(ctx, tgt, delivery(1, "v1", "")); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() { errs <- s.Stage(ctx, tgt, delivery(2, fmt.Sprintf("v2-%d", i), "v1")) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	st, err := a.Inspect(ctx, tgt)
	if err != nil || st.Current != rotator.Fingerprint("v1") || st.Pending == "" {
		t.Fatalf("Inspect = %+v, %v", st, err)
	}
}

// TestConflictIsRetryable: a file that changes under every attempt ends in
// a retryable conflict error, not a clobber.
func TestConflictIsRetryable(t *testing.T) {
	dir := t.TempDir()
	s := newSink(t, Config{Dir: dir})
	ctx := context.Background()
	tgt := rotator.Target{Key: "k"}
	if err := s.Stage(ctx, tgt, delivery(1, "v1", "")); err != nil {
		t.Fatal(err)
	}
	n := 0
	var arm func()
	arm = func() {
		fn := func() {
			n++
			if err := editJSON(filepath.Join(dir, "k.json"), func(m map[string]any) { m["foreign"] = n }); err != nil {
				t.Error(err)
			}
			arm()
		}
		s.hook.Store(&fn)
	}
	arm()
	err := s.Stage(ctx, tgt, delivery(2, "v2", "v1"))
	s.hook.Store(nil)
	if err == nil || rotator.IsPermanent(err) || rotator.ReasonOf(err) != rotator.ReasonConflict || !errors.Is(err, rotator.ErrConflict) {
		t.Fatalf("Stage against a file that always changes = %v, want a retryable conflict", err)
	}
	if n != maxAttempts {
		t.Fatalf("attempts = %d, want %d", n, maxAttempts)
	}
}

func TestConfig(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if got := DefaultConfig().Dir; got != "./data/secrets" {
		t.Fatalf("default dir = %q", got)
	}
	err := Config{}.Validate()
	if err == nil || !strings.HasPrefix(err.Error(), "dir: ") {
		t.Fatalf("Validate of an empty config = %v, want a dir: error", err)
	}
	if _, err := New(Config{}, nil); err == nil {
		t.Fatal("New accepted an invalid config")
	}
}
