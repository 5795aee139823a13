package file

import (
	"context"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// TestUpdatedAt: updated_at of the current entry tells when it became
// current (the shared transitions move entries; the sink stamps them), and
// other entries keep the time they were written.
func TestUpdatedAt(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(step int) time.Time { return base.Add(time.Duration(step) * time.Hour) }
	d1, d2 := delivery(1, "v1", ""), delivery(2, "v2", "v1")
	type stamp struct {
		gen  int
		time time.Time
	}
	tests := map[string]struct {
		steps                  []string // at hour 1, 2, …
		current, pending, prev stamp
	}{
		"first delivery":   {steps: []string{"stage1"}, current: stamp{1, at(1)}},
		"staged beside":    {steps: []string{"stage1", "stage2"}, current: stamp{1, at(1)}, pending: stamp{2, at(2)}},
		"promoted":         {steps: []string{"stage1", "stage2", "promote"}, current: stamp{2, at(3)}, prev: stamp{1, at(1)}},
		"promote replayed": {steps: []string{"stage1", "stage2", "promote", "promote"}, current: stamp{2, at(3)}, prev: stamp{1, at(1)}},
		"cleaned up":       {steps: []string{"stage1", "stage2", "promote", "cleanup"}, current: stamp{2, at(3)}},
		"rolled back":      {steps: []string{"stage1", "stage2", "promote", "rollback"}, current: stamp{1, at(4)}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s := newSink(t, Config{Dir: dir})
			ctx, tgt := context.Background(), rotator.Target{Key: "k", Path: "k"}
			for i, step := range tc.steps {
				s.now = func() time.Time { return at(i + 1) }
				err := map[string]func() error{
					"stage1":   func() error { return s.Stage(ctx, tgt, d1) },
					"stage2":   func() error { return s.Stage(ctx, tgt, d2) },
					"promote":  func() error { return s.Promote(ctx, tgt, d2) },
					"cleanup":  func() error { return s.Cleanup(ctx, tgt, d2) },
					"rollback": func() error { return s.Rollback(ctx, tgt, d2) },
				}[step]()
				if err != nil {
					t.Fatalf("%s: %v", step, err)
				}
			}
			snap, err := readSnapshot(location{dir: dir, rel: "k.json"})
			if err != nil {
				t.Fatal(err)
			}
			doc, _, err := decodeDocument(snap.raw)
			if err != nil {
				t.Fatal(err)
			}
			for slot, x := range map[string]struct {
				e    *entry
				want stamp
			}{"current": {doc.Current, tc.current}, "pending": {doc.Pending, tc.pending}, "previous": {doc.Previous, tc.prev}} {
				var got stamp
				if x.e != nil {
					got = stamp{x.e.Generation, x.e.UpdatedAt}
				}
				if !got.time.Equal(x.want.time) || got.gen != x.want.gen {
					t.Errorf("%s = generation %d at %v, want %d at %v", slot, got.gen, got.time, x.want.gen, x.want.time)
				}
			}
		})
	}
}
