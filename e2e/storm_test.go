package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// stormKeys is how many keys the input-storm daemon manages.
const stormKeys = 6

// stormWorld: the exposure template with six keys, a 3-in-10-minutes
// breaker and a 15-second digest window (longer than the storm takes on a
// loaded machine, so that it lands in one digest).
func stormWorld(t *testing.T) *kaWorld {
	t.Helper()
	tmpl := strings.Replace(exposureTemplate, "  - {name: leaks, type: exposure, secret_file: {{.W.Dir}}/exposure-secret}",
		"  - {name: leaks, type: exposure, secret_file: {{.W.Dir}}/exposure-secret, rate_per_minute: 100000}\nbreaker: {max: 3, window: 10m}\nretention: {digest_window: 15s}", 1)
	var keys strings.Builder
	for i := 1; i <= stormKeys; i++ {
		fmt.Fprintf(&keys, "  - {name: key-%d, issuer: ka, owners: [alice@example.com], params: {scopes: [clusters:read]}, sinks: [{sink: files}]}\n", i)
	}
	tmpl = tmpl[:strings.Index(tmpl, "keys:\n")] + "keys:\n" + keys.String()
	ka := newKAWorld(t) // the Kubeadapt-style server and secrets
	w := newWorldFrom(t, tmpl, func(w *world) any { return map[string]any{"W": w, "KA": ka.ka.URL()} })
	writeFile(t, filepath.Join(w.dir, "ka-admin-token"), ka.ka.AdminToken())
	writeFile(t, filepath.Join(w.dir, "exposure-secret"), exposureSecret)
	return &kaWorld{world: w, ka: ka.ka}
}

// reportFingerprint posts a signed sha256-only report.
func (w *world) reportFingerprint(id, token string) int {
	w.t.Helper()
	body, _ := json.Marshal(map[string]string{"sha256": rotator.Fingerprint(token)})
	resp, err := w.postExposure(id, body)
	if err != nil {
		w.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// The input-storm suite of issue 12, against the real binary: a
// fingerprint from a source not trusted for them revokes nothing; 1,000
// signed reports of tokens that match nothing become one digest, with
// bounded growth of the database, while a real emergency sent in the
// middle is delivered first; and a burst of real exposures opens the
// breaker after three, the rest wait for a responder, and one release lets
// them all revoke.
func TestInputStorm(t *testing.T) {
	t.Parallel()
	k := stormWorld(t)
	d := k.start()
	defer d.stop()
	for i := 1; i <= stormKeys; i++ {
		k.bootstrap(fmt.Sprint("key-", i))
	}
	live := func(i int) string {
		v := k.sink(fmt.Sprint("key-", i)).Current.Value
		addSecret(v)
		return v
	}
	rotations := func() []rotationView {
		var list struct {
			Rotations []rotationView `json:"rotations"`
		}
		k.api("GET", "/v1/rotations", nil, &list)
		return list.Rotations
	}
	emergencies := func() (n int) {
		for _, r := range rotations() {
			if r.Trigger == "exposure" {
				n++
			}
		}
		return n
	}

	// (c) A fingerprint alone is no proof of possession.
	if code := k.reportFingerprint("fp-1", live(1)); code != http.StatusForbidden {
		t.Fatalf("fingerprint-only report from an untrusted source: %d, want 403", code)
	}
	if n := emergencies(); n != 0 {
		t.Fatalf("a refused report started %d rotations", n)
	}

	// (b) Noise, with one real leak in the middle.
	dbBefore := fileSize(t, filepath.Join(k.dir, "rekey.db")) + fileSize(t, filepath.Join(k.dir, "rekey.db-wal"))
	for i := range 1000 {
		if i == 500 {
			if code, body := k.report("real-1", live(1)); code != 202 || body["known"] != true {
				t.Fatalf("real report: %d %v", code, body)
			}
		}
		if code, _ := k.report(fmt.Sprint("noise-", i), fmt.Sprintf("ka_live_NOISE%027d", i)); code != 202 {
			t.Fatalf("noise report %d: %d", i, code)
		}
	}
	dbAfter := fileSize(t, filepath.Join(k.dir, "rekey.db")) + fileSize(t, filepath.Join(k.dir, "rekey.db-wal"))
	t.Logf("1,000 unmatched reports: database grew by %d bytes (%d per report)", dbAfter-dbBefore, (dbAfter-dbBefore)/1000)
	var digests, counted, firstDigest, firstEmergency int
	firstDigest, firstEmergency = -1, -1
	deadline := patient(40 * time.Second)
	for digests == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		bodies, _ := k.notifications()
		digests, counted = 0, 0
		for i, b := range bodies {
			var ev struct {
				Kind     string            `json:"kind"`
				Severity string            `json:"severity"`
				Message  string            `json:"message"`
				Fields   map[string]string `json:"fields"`
			}
			_ = json.Unmarshal(b, &ev)
			switch {
			case ev.Kind == rotator.EventDigest:
				digests++
				if firstDigest < 0 {
					firstDigest = i
				}
				n, _ := strconv.Atoi(ev.Fields["count"])
				counted += n
				t.Logf("digest: %s", ev.Message)
			case ev.Kind == rotator.EventStarted && ev.Severity == "critical" && firstEmergency < 0:
				firstEmergency = i
			case ev.Kind == rotator.EventUnknownLeak:
				t.Fatalf("an unmatched report was echoed one message each: %s", ev.Message)
			}
		}
	}
	// A report whose processing is retried (the store busy after it was
	// counted) may be counted twice; none is lost.
	if digests != 1 || counted < 1000 || counted > 1010 || firstEmergency < 0 || firstEmergency > firstDigest {
		t.Fatalf("%d digests counting %d reports (want 1 counting 1,000); emergency notified at %d, digest at %d (want the emergency first)",
			digests, counted, firstEmergency, firstDigest)
	}

	// (d) Four more real leaks: with one already revoked, the breaker (3
	// in 10 minutes) lets two more revoke and contains the rest.
	for i := 2; i <= 5; i++ {
		if code, _ := k.report(fmt.Sprint("burst-", i), live(i)); code != 202 {
			t.Fatalf("burst report %d: %d", i, code)
		}
	}
	var contained []rotationView
	deadline = patient(20 * time.Second)
	for time.Now().Before(deadline) {
		contained = contained[:0]
		settled := 0
		for _, r := range rotations() {
			if r.Trigger != "exposure" {
				continue
			}
			switch {
			case r.Phase == "revoking" && r.Hold == "approval":
				contained = append(contained, r)
			case r.Phase == "done":
				settled++
			}
		}
		if settled == 3 && len(contained) == 2 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(contained) != 2 {
		t.Fatalf("%d emergencies contained by the breaker, want 2: %+v", len(contained), rotations())
	}
	var breaker struct {
		Open      bool     `json:"open"`
		Contained []string `json:"contained"`
	}
	if code := k.api("GET", "/v1/breaker", nil, &breaker); code != 200 || !breaker.Open || len(breaker.Contained) != 2 {
		t.Fatalf("breaker: %d %+v", code, breaker)
	}
	var released struct {
		Released []string `json:"released"`
	}
	if code := k.api("POST", "/v1/breaker/release", map[string]string{}, &released); code != 200 || len(released.Released) != 2 {
		t.Fatalf("release: %d %+v", code, released)
	}
	for _, r := range contained {
		if got := k.waitRotation(r.ID, 30*time.Second); got.Phase != "done" {
			t.Fatalf("released rotation %s ended %s", r.ID, got.Phase)
		}
	}
	for i := 1; i <= 5; i++ {
		addSecret(k.sink(fmt.Sprint("key-", i)).Current.Value)
	}
	d.stop()
	k.scanForSecrets()
}

func fileSize(t *testing.T, path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
