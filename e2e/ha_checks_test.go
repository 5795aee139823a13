package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// What the HA tests check once the cluster has settled, and the figures
// they report.

// checkInvariants checks the end state once settled: every rotation done
// and none overlapping another of its key; for each key one live
// credential at the issuer, the one rekey records as current and every
// sink holds; no generation name created twice at the issuer (counted over
// every key the server ever created, revoked ones included); every
// notification delivered to each notifier, the same events to both; the
// audit chain intact. It returns the rotations and how many mints the
// issuer answered by replaying an idempotency key.
func (c *haCluster) checkInvariants() (rotations, replays int) {
	t := c.t
	t.Helper()
	// Overlap is judged by commit order, not by the daemons' timestamps
	// (a rotation's created_at is taken before its insert, a finish's time
	// before its commit): every audit event is appended under one lock, in
	// the transaction of the change it records, so a rotation's events span
	// from its creation's commit to its end's.
	type rot struct {
		id, key, phase string
		first, last    int64
	}
	rows, err := c.db.Query(`SELECT r.id, r.key, r.phase, MIN(a.seq), MAX(a.seq) FROM rotations r
		JOIN audit_events a ON a.rotation_id = r.id GROUP BY r.id, r.key, r.phase ORDER BY r.key, MIN(a.seq)`)
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string][]rot{}
	for rows.Next() {
		var r rot
		if err := rows.Scan(&r.id, &r.key, &r.phase, &r.first, &r.last); err != nil {
			t.Fatal(err)
		}
		byKey[r.key] = append(byKey[r.key], r)
		rotations++
		if r.phase != string(rotator.PhaseDone) {
			t.Errorf("rotation %s of %s ended %s", r.id, r.key, r.phase)
		}
	}
	rows.Close()
	if all := c.scalar(`SELECT COUNT(*) FROM rotations`); all != rotations {
		t.Errorf("%d rotations, %d of them with audit events", all, rotations)
	}
	for key, rs := range byKey {
		for i := 1; i < len(rs); i++ {
			if rs[i].first < rs[i-1].last {
				t.Errorf("key %s: rotation %s began (audit seq %d) before %s ended (audit seq %d)", key, rs[i].id, rs[i].first, rs[i-1].id, rs[i-1].last)
			}
		}
	}
	// A kill between the issuer's answer and rekey's record of it leaves a
	// mint rekey never saw; the next holder asks again with the intent's
	// idempotency key and the issuer answers with the same key. A name
	// created twice means a mint was repeated without its key.
	created := map[string]int{}
	for _, k := range c.ka.Keys() {
		created[k.Name]++
	}
	for name, n := range created {
		if n > 1 {
			t.Errorf("issuer: %d keys created under the name %s", n, name)
		}
	}
	st := c.ka.Idempotency()
	if st.Mismatches > 0 || st.Expired > 0 {
		t.Errorf("issuer: idempotency keys reused with another payload %d times, expired %d", st.Mismatches, st.Expired)
	}
	c.t.Logf("issuer: %d keys created under %d names; %d mints answered by an idempotency replay, %d while the key's first request was in flight (409, retried)",
		len(c.ka.Keys()), len(created), st.Replays, st.InFlight)
	for _, key := range c.keys {
		var issuerID, fp string
		if err := c.db.QueryRow(`SELECT issuer_id, fingerprint FROM credentials WHERE key = $1 AND state = 'current'`, key).Scan(&issuerID, &fp); err != nil {
			t.Errorf("key %s: current credential: %v", key, err)
			continue
		}
		active, _ := kaKeysNamed(c.ka, key+"-v", true)
		if len(active) != 1 || active[0].ID != issuerID {
			t.Errorf("key %s: issuer's live keys %+v, rekey's current is %s", key, active, issuerID)
		}
		var doc sinkDoc
		b, err := os.ReadFile(filepath.Join(c.dir, "secrets", key+".json"))
		if err == nil {
			err = json.Unmarshal(b, &doc)
		}
		if err != nil || doc.Current == nil || doc.Pending != nil || rotator.Fingerprint(doc.Current.Value) != fp {
			t.Errorf("key %s: sink %+v (%v) does not hold the current credential alone", key, doc, err)
			continue
		}
		addSecret(doc.Current.Value)
		if st := haDataStatus(t, c.kaURL, doc.Current.Value); st != http.StatusOK {
			t.Errorf("key %s: the sink's key gets %d at the issuer", key, st)
		}
	}
	events := [2]map[string]bool{}
	for i, h := range c.hooks {
		name := fmt.Sprintf("hook%d", i+1)
		events[i] = map[string]bool{}
		rows, err := c.db.Query(`SELECT id, delivered_at FROM outbox WHERE notifier = $1`, name)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id, at string
			if err := rows.Scan(&id, &at); err != nil {
				t.Fatal(err)
			}
			events[i][strings.TrimPrefix(id, name+"/")] = true
			if at == "" {
				t.Errorf("%s: %s not delivered", name, id)
			}
		}
		rows.Close()
		got, bad := h.snapshot()
		if bad > 0 {
			t.Errorf("%s: %d deliveries with a bad signature", name, bad)
		}
		for id := range events[i] {
			if got[id] == 0 {
				t.Errorf("%s: event %s queued but never received", name, id)
			}
		}
		for id := range got {
			if !events[i][id] {
				t.Errorf("%s: received %s, which was never queued", name, id)
			}
		}
	}
	for id := range events[0] {
		if !events[1][id] {
			t.Errorf("event %s went to hook1 but not hook2", id)
		}
	}
	if len(events[0]) != len(events[1]) {
		t.Errorf("hook1 has %d events, hook2 %d", len(events[0]), len(events[1]))
	}
	cmd := exec.Command(binary, "audit", "verify", "-c", c.cfgs[0])
	cmd.Env = append(os.Environ(), "REKEY_HA_DSN="+c.dsn)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("audit verify: %v\n%s", err, out)
	}
	return rotations, st.Replays
}

// redelivered counts deliveries of one event id beyond the first (a kill
// between the receiver's answer and the daemon's record of it); the
// receiver de-duplicates them on webhook-id.
func (c *haCluster) redelivered() int {
	n := 0
	for _, h := range c.hooks {
		got, _ := h.snapshot()
		for _, k := range got {
			n += k - 1
		}
	}
	return n
}

func haDataStatus(t *testing.T, base, secret string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/v1/clusters", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// percentile of sorted durations (nearest rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// clusterView runs `rekey cluster -o json` (break-glass: it reads the
// store) and counts members by state.
func (c *haCluster) clusterView() map[string]int {
	c.t.Helper()
	cmd := exec.Command(binary, "cluster", "-o", "json", "-c", c.cfgs[0])
	cmd.Env = append(os.Environ(), "REKEY_HA_DSN="+c.dsn)
	out, err := cmd.Output()
	if err != nil {
		c.t.Fatalf("rekey cluster: %v\n%s", err, out)
	}
	var v struct {
		Members []struct {
			State string `json:"state"`
		} `json:"members"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		c.t.Fatalf("rekey cluster -o json: %v\n%s", err, out)
	}
	n := map[string]int{}
	for _, m := range v.Members {
		n[m.State]++
	}
	return n
}

// metric reads one sample of daemon d's /metrics ("name{labels}").
func (c *haCluster) metric(d *haDaemon, sample string) string {
	resp, err := http.Get("http://" + d.admin + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			return v
		}
	}
	return ""
}
