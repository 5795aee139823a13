package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/testing/consumer"
)

// The zero-downtime promise, end to end: consumers that re-read their sink
// every 200 ms (one per sink: the file sink's document, Vault KV v2,
// Secrets Manager) call the API without pause through a full staged
// rotation, and not one request fails — they are on the new key before
// the old one is revoked. The revoke comes only after the drain gate saw a
// real zero for the quiet period (the audit trail's drained event says how
// long), never on a timer.
func TestZeroDowntimeRotation(t *testing.T) {
	t.Parallel()
	const quiet = 2 * time.Second
	s := newZDStack(t, zdOptions{Quiet: quiet, MaxWait: time.Minute, Watch: 2 * time.Second, Vault: true, AWS: true})
	consumers := map[string]*consumerProc{
		"file":  s.startConsumer("file", 200*time.Millisecond, s.fileSource()),
		"vault": s.startConsumer("vault", 200*time.Millisecond, s.vaultSource()),
		"aws":   s.startConsumer("aws", 200*time.Millisecond, s.awsSource()),
	}
	for _, c := range consumers {
		c.waitServed(10, 15*time.Second)
	}
	oldKey := s.kaKey(zdKey + "-v1")
	oldFP := s.w.sink(zdKey).Current.Fingerprint

	r := s.rotate("zero-downtime proof")
	done := s.waitDone(r.ID, 30*time.Second)
	if done.Phase != "done" {
		t.Fatalf("rotation ended %s: %s %s", done.Phase, done.Outcome, done.LastError)
	}
	for _, c := range consumers { // a few more requests on the new key
		c.waitServed(c.live().Served+5, 15*time.Second)
	}
	reports := map[string]consumer.Report{}
	for name, c := range consumers {
		reports[name] = c.stop()
	}
	s.collect()

	events := s.audit(r.ID)
	cutOver, drained, revoked := event(t, events, "cut_over"), event(t, events, "drained"), event(t, events, "revoked")
	quietFor, err := time.ParseDuration(drained.Detail["quiet_for"])
	if err != nil || quietFor < quiet {
		t.Fatalf("drained after %q of quiet (%v), want at least %s: %+v", drained.Detail["quiet_for"], err, quiet, drained)
	}
	if drained.Detail["source"] != "prom" {
		t.Fatalf("drained by source %q, want prom", drained.Detail["source"])
	}
	if !(cutOver.Seq < drained.Seq && drained.Seq < revoked.Seq) || revoked.At.Before(drained.At) {
		t.Fatalf("order: cut_over %d, drained %d, revoked %d", cutOver.Seq, drained.Seq, revoked.Seq)
	}

	newFP := s.w.sink(zdKey).Current.Fingerprint
	if newFP == oldFP {
		t.Fatal("the file sink still holds the old key")
	}
	total := consumer.Report{ByStatus: map[string]int{}}
	var lastSwitch time.Duration
	for name, rep := range reports {
		t.Log(summary(name, rep))
		if rep.Failures != 0 || rep.Served != rep.Requests {
			t.Errorf("consumer %s: %d failed requests (%v): %+v", name, rep.Failures, rep.ByStatus, rep.Spans)
		}
		at, ok := rep.SwitchedTo(newFP)
		if !ok || rep.Current() != newFP {
			t.Errorf("consumer %s never switched to the new key: %+v", name, rep.Switches)
			continue
		}
		if !at.Before(revoked.At) {
			t.Errorf("consumer %s switched at %s, after the revoke at %s", name, at, revoked.At)
		}
		if old, _ := rep.Key(oldFP); old.LastSentAt.After(revoked.At) {
			t.Errorf("consumer %s used the old key after the revoke", name)
		}
		if d := at.Sub(cutOver.At); d > lastSwitch {
			lastSwitch = d
		}
		total.Requests += rep.Requests
		total.Served += rep.Served
		total.Failures += rep.Failures
	}
	if got := s.ka.Requests(oldKey.ID, 401); got != 0 {
		t.Errorf("the server answered %d 401s to the old key", got)
	}
	if k := s.kaKey(zdKey + "-v1"); k.Status != "revoked" {
		t.Errorf("old key at the issuer: %s", k.Status)
	}
	if k := s.kaKey(zdKey + "-v2"); k.Status != "active" {
		t.Errorf("new key at the issuer: %s", k.Status)
	}
	for sink, v := range s.sinkValues() {
		if consumer.Fingerprint(v) != newFP {
			t.Errorf("sink %s does not hold the new key as current", sink)
		}
	}
	t.Logf("figures: %d requests, %d served, %d failed; quiet period %s; cut-over → revoke %s (drained after %s of quiet); slowest consumer switch %s after cut-over",
		total.Requests, total.Served, total.Failures, quiet, revoked.At.Sub(cutOver.At).Round(time.Millisecond), drained.Detail["quiet_for"], lastSwitch.Round(time.Millisecond))
	s.d.stop()
	s.w.scanForSecrets()
}

// A consumer nobody told about the rotation — it read the key once at
// start-up and never again — keeps being served after the cut-over (the
// old key is still valid, so nobody fails and the gate rightly passes) and
// fails from the moment the old key is revoked. The post-revoke watch sees
// those 401s in Prometheus and alerts at once, naming the key and the
// revoked credential; nothing is re-minted.
func TestForgottenConsumerIsCaughtByTheWatch(t *testing.T) {
	t.Parallel()
	s := newZDStack(t, zdOptions{Quiet: 2 * time.Second, MaxWait: time.Minute, Watch: 5 * time.Second, Vault: true})
	follower := s.startConsumer("follower", 200*time.Millisecond, s.vaultSource())
	forgotten := s.startConsumer("forgotten", 0, s.fileSource())
	follower.waitServed(10, 15*time.Second)
	forgotten.waitServed(10, 15*time.Second)
	oldKey := s.kaKey(zdKey + "-v1")
	oldFP := s.w.sink(zdKey).Current.Fingerprint

	r := s.rotate("forgotten consumer")
	alerts := s.waitNotified(r.ID, "rotation.watch_alert", 30*time.Second)
	done := s.waitDone(r.ID, 30*time.Second)
	if done.Phase != "done" {
		t.Fatalf("rotation ended %s: %s %s", done.Phase, done.Outcome, done.LastError)
	}
	time.Sleep(time.Second) // would anything re-mint or start again?
	fol, forg := follower.stop(), forgotten.stop()
	t.Log(summary("follower", fol))
	t.Log(summary("forgotten", forg))

	a := alerts[0]
	if a.Severity != "critical" || a.Key != zdKey || !strings.Contains(a.Message, zdKey+"-v1") || !strings.Contains(a.Message, "nothing is re-minted") {
		t.Fatalf("watch alert does not name the key and the revoked credential: %+v", a)
	}
	if rate, err := strconv.ParseFloat(a.Fields["rate"], 64); err != nil || rate <= 0 {
		t.Fatalf("watch alert carries no 401 rate as evidence: %+v", a.Fields)
	}
	events := s.audit(r.ID)
	cutOver, drained, revoked := event(t, events, "cut_over"), event(t, events, "drained"), event(t, events, "revoked")
	alerted, watched := event(t, events, "watch.alert"), event(t, events, "watched")
	if watched.Detail["alerted"] != "true" || alerted.Seq < revoked.Seq {
		t.Fatalf("watch: alert %+v, watched %+v", alerted, watched)
	}

	// The forgotten consumer: one key, served until the revoke, then 401.
	if forg.Reads != 1 || len(forg.Keys) != 1 || forg.Keys[0].Fingerprint != oldFP {
		t.Fatalf("the forgotten consumer read %d times, keys %+v", forg.Reads, forg.Keys)
	}
	if len(forg.Spans) != 2 || forg.Spans[0].Status != "200" || forg.Spans[1].Status != "401" {
		t.Fatalf("the forgotten consumer's answers, want 200s then 401s: %+v", forg.Spans)
	}
	served, failed := forg.Spans[0], forg.Spans[1]
	// It sends every 20 ms: served through the whole drain means its last
	// 200 came moments before the revoke.
	if !served.LastSentAt.After(cutOver.At) || !served.LastSentAt.Before(revoked.At) || revoked.At.Sub(served.LastSentAt) > time.Second {
		t.Fatalf("the forgotten consumer was last served at %s; cut-over %s, drained %s, revoked %s", served.LastSentAt, cutOver.At, drained.At, revoked.At)
	}
	if !failed.FirstAnsweredAt.After(drained.At) {
		t.Fatalf("the forgotten consumer failed at %s, before the gate passed at %s", failed.FirstAnsweredAt, drained.At)
	}
	if got := s.ka.Requests(oldKey.ID, 401); got < failed.Count {
		t.Fatalf("the server counted %d 401s on the old key, the consumer %d", got, failed.Count)
	}
	if fol.Failures != 0 || fol.Current() == oldFP {
		t.Fatalf("the following consumer: %d failures, on the old key: %v", fol.Failures, fol.Current() == oldFP)
	}

	// Nothing re-minted: the two generations, and no rotation started.
	keys := s.ka.Keys()
	if len(keys) != 2 || s.kaKey(zdKey+"-v1").Status != "revoked" || s.kaKey(zdKey+"-v2").Status != "active" {
		t.Fatalf("issuer keys after the alert: %+v", keys)
	}
	var list struct {
		Rotations []rotationView `json:"rotations"`
	}
	s.w.api("GET", "/v1/rotations?key="+zdKey, nil, &list)
	if len(list.Rotations) != 2 {
		t.Fatalf("%d rotations, want the bootstrap and this one: %+v", len(list.Rotations), list.Rotations)
	}
	var kv struct {
		Keys []struct {
			Name       string `json:"name"`
			Generation int    `json:"generation"`
		} `json:"keys"`
	}
	s.w.api("GET", "/v1/keys", nil, &kv)
	if len(kv.Keys) != 1 || kv.Keys[0].Generation != 2 {
		t.Fatalf("rekey's keys after the alert: %+v", kv.Keys)
	}
	t.Logf("figures: forgotten consumer served %d (last %s after cut-over, %s before the revoke), then %d × 401; revoke → first 401 %s, revoke → watch alert %s; issuer keys %d",
		served.Count, served.LastSentAt.Sub(cutOver.At).Round(time.Millisecond), revoked.At.Sub(served.LastSentAt).Round(time.Millisecond), failed.Count,
		failed.FirstAnsweredAt.Sub(revoked.At).Round(time.Millisecond), alerted.At.Sub(revoked.At).Round(time.Millisecond), len(keys))
	s.d.stop()
	s.w.scanForSecrets()
}
