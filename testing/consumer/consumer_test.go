package consumer

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/testing/kubeadapt"
)

func writeDoc(t *testing.T, path, value string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"managed_by": "rekey", "current": map[string]any{"value": value, "generation": 1}})
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	// Generous: a wait ends as soon as cond holds, and a loaded two-core
	// machine running the race detector is many times slower than a laptop.
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A reloading consumer follows the key in its file; a consumer that read
// the key once keeps using it, and its answers turn 401 once it is revoked.
// Reports carry fingerprints, never keys.
func TestConsumerFollowsOrKeepsTheKey(t *testing.T) {
	srv := kubeadapt.New(kubeadapt.Options{AdminToken: "admin"})
	if err := srv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	req := kubeadapt.KeyRequest{Name: "api-v1", Scopes: []string{kubeadapt.ScopeClustersRead}}
	k1, s1, err := srv.CreateKey(req)
	if err != nil {
		t.Fatal(err)
	}
	req.Name = "api-v2"
	_, s2, err := srv.CreateKey(req)
	if err != nil {
		t.Fatal(err)
	}
	doc := filepath.Join(t.TempDir(), "api.json")
	writeDoc(t, doc, s1)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := func(reload time.Duration) (*Consumer, chan struct{}) {
		c, err := New(Options{URL: srv.URL(), Reader: File(doc), Reload: reload, Interval: 5 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { _ = c.Run(ctx); close(done) }()
		return c, done
	}
	follower, fdone := start(20 * time.Millisecond)
	forgotten, odone := start(0)
	waitFor(t, "both consumers served", func() bool { return follower.Report().Served > 0 && forgotten.Report().Served > 0 })

	writeDoc(t, doc, s2)
	waitFor(t, "the follower switched", func() bool { return follower.Report().Current() == Fingerprint(s2) })
	if _, err := srv.Revoke(k1.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the forgotten consumer failed", func() bool { return forgotten.Report().ByStatus["401"] > 0 })
	cancel()
	<-fdone
	<-odone

	f := follower.Report()
	if f.Failures != 0 || f.Served != f.Requests || len(f.Keys) != 2 || f.Mode != ModeReload {
		t.Fatalf("follower: %+v", f)
	}
	if _, ok := f.SwitchedTo(Fingerprint(s2)); !ok {
		t.Fatalf("follower did not record its switch: %+v", f.Switches)
	}
	o := forgotten.Report()
	if o.Mode != ModeOnce || o.Reads != 1 || len(o.Keys) != 1 || o.Current() != Fingerprint(s1) {
		t.Fatalf("forgotten consumer: %+v", o)
	}
	if n := len(o.Spans); n != 2 || o.Spans[0].Status != "200" || o.Spans[1].Status != "401" || o.Spans[0].Count+o.Spans[1].Count != o.Requests {
		t.Fatalf("forgotten consumer spans: %+v", o.Spans)
	}
	if o.Failures != o.ByStatus["401"] || o.Served != o.ByStatus["200"] {
		t.Fatalf("forgotten consumer counts: %+v", o)
	}
	// The consumer calls one request at a time; the one in flight when the
	// test cancels it may reach the server and never be recorded by the
	// consumer (its answer arrives after the cancel): at most one more.
	if got, want := srv.Requests(k1.ID, 401), o.ByStatus["401"]; got < want || got > want+1 {
		t.Fatalf("server counted %d 401s for the old key, consumer %d (one in flight at most)", got, want)
	}

	path := filepath.Join(t.TempDir(), "report.json")
	if err := o.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	for _, s := range []string{s1, s2} {
		if strings.Contains(string(raw), s) {
			t.Fatal("a report holds a key")
		}
	}
	back, err := ReadReport(path)
	if err != nil || back.Requests != o.Requests || len(back.Spans) != 2 {
		t.Fatalf("report round trip: %v %+v", err, back)
	}
}

// A transport failure is a failure, labelled "error"; a missing document
// is a read error, not a request.
func TestConsumerCountsTransportErrors(t *testing.T) {
	doc := filepath.Join(t.TempDir(), "api.json")
	c, err := New(Options{URL: "http://127.0.0.1:1", Reader: File(doc), Reload: 10 * time.Millisecond, Interval: 5 * time.Millisecond, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	waitFor(t, "read errors", func() bool { return c.Report().ReadErrors > 0 })
	if r := c.Report(); r.Requests != 0 {
		t.Fatalf("requests without a key: %+v", r)
	}
	writeDoc(t, doc, "ka_live_"+strings.Repeat("x", 32))
	waitFor(t, "a failed request", func() bool { return c.Report().ByStatus[StatusError] > 0 })
	cancel()
	<-done
	r := c.Report()
	if r.Served != 0 || r.Failures != r.Requests || r.LastError == "" || r.StoppedAt.IsZero() {
		t.Fatalf("report: %+v", r)
	}
}
