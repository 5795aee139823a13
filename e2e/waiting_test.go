package e2e

import (
	"strings"
	"testing"
	"time"
)

type waitingView struct {
	Reason    string `json:"reason"`
	Detail    string `json:"detail"`
	Since     string `json:"since"`
	NextCheck string `json:"next_check"`
	Deadline  string `json:"deadline"`
	LastError string `json:"last_error"`
}

// waitFor polls the rotation until its waiting reason is reason.
func (w *world) waitingFor(id, reason string, within time.Duration) waitingView {
	w.t.Helper()
	deadline := patient(within)
	var got struct {
		Rotation struct {
			Phase   string       `json:"phase"`
			Waiting *waitingView `json:"waiting"`
		} `json:"rotation"`
	}
	for time.Now().Before(deadline) {
		w.api("GET", "/v1/rotations/"+id, nil, &got)
		if wv := got.Rotation.Waiting; wv != nil && wv.Reason == reason {
			return *wv
		}
		time.Sleep(50 * time.Millisecond)
	}
	w.t.Fatalf("rotation %s never waited for %s: phase %s, waiting %+v\n%s", id, reason, got.Rotation.Phase, got.Rotation.Waiting, w.logTail())
	return waitingView{}
}

// Issue 13's frictions with the real binary: draining against a dead
// Prometheus shows the source's error (API, `show`, `rotations`) rather
// than a bare phase; cancelled, the rotation shows that it rolls back and
// waits for consumers to move back.
func TestWaitingIsVisible(t *testing.T) {
	t.Parallel()
	tmpl := strings.Replace(cfgTemplate, "traffic:\n  - name: fixed\n    type: fixed",
		"traffic:\n  - name: fixed\n    type: fixed\n  - name: prom\n    type: prometheus\n    url: http://127.0.0.1:1\n    timeout: 1s", 1)
	tmpl = strings.Replace(tmpl, "    source: fixed\n    quiet_period: {{.Quiet}}",
		"    source: prom\n    query: 'sum(rate(http_401_total{key=\"{{\"{{\"}}promql .Key{{\"}}\"}}\"}[1m]))'\n    quiet_period: {{.Quiet}}", 1)
	w := newWorldFrom(t, tmpl, func(w *world) any {
		return params{Dir: w.Dir(), Hook: w.HookURL(), MaxAge: "90d", Quiet: "30s", Watch: "0s", Sched: "@every 1h", Keys: []string{"api"}}
	})
	d := w.start()
	defer d.stop()
	w.bootstrap("api")
	out, code := w.cli("", "rotate", "api")
	if code != 0 || strings.Contains(out, "awaiting_approval") {
		t.Fatalf("rotate (no approval gate): exit %d: %s", code, out)
	}
	id := strings.Fields(out)[0]
	wv := w.waitingFor(id, "traffic_error", 20*time.Second)
	if !strings.Contains(wv.LastError, "connection refused") || wv.NextCheck == "" || wv.Deadline == "" || wv.Since == "" {
		t.Fatalf("draining against a dead Prometheus: waiting %+v", wv)
	}
	show, _ := w.cli("", "show", id)
	if !strings.Contains(show, "waiting:  traffic_error") || !strings.Contains(show, "connection refused") {
		t.Fatalf("show does not say what the rotation waits for:\n%s", show)
	}
	list, _ := w.cli("", "rotations")
	if !strings.Contains(list, "traffic_error") || !strings.Contains(list, "next") {
		t.Fatalf("rotations lacks the WAITING reason and countdown:\n%s", list)
	}
	if out, code := w.cli("", "cancel", id); code != 0 {
		t.Fatalf("cancel: exit %d: %s", code, out)
	}
	wv = w.waitingFor(id, "rolling_back", 20*time.Second)
	if !strings.Contains(wv.Detail, "current again") {
		t.Fatalf("rolling back: waiting %+v", wv)
	}
}
