package e2e

import (
	"testing"
	"time"

	"github.com/rekeyhq/rekey/testing/consumer"
)

// A consumer with a broken key holds the gate until max_wait; it is fixed
// (stopped) and a person approves the revoke anyway. The post-revoke watch
// counts only traffic since the revoke: the 401s from before it are not
// "after revoking", so it reads zero and raises no alert — where it used to
// alert on them with "401 traffic after revoking".
func TestWatchIgnoresTrafficFromBeforeTheRevoke(t *testing.T) {
	t.Parallel()
	s := newZDStack(t, zdOptions{Quiet: time.Second, MaxWait: 3 * time.Second, Watch: 3 * time.Second})
	follower := s.startConsumer("follower", 200*time.Millisecond, s.fileSource())
	broken := s.startConsumer("broken", 0, []string{"-key-env", "BROKEN_KEY"}, "BROKEN_KEY="+brokenKey)
	follower.waitServed(10, 15*time.Second)
	waitLive(t, broken, "401s", func(r consumer.Report) bool { return r.ByStatus["401"] >= 10 })

	r := s.rotate("approve anyway, then watch")
	s.waitFor(r.ID, "held at max_wait", 30*time.Second, func(r zdRotation) bool { return r.Hold == "drain_timeout" })
	fixed := broken.stop()
	// Another person than the requester (the break-glass account that
	// started it), through the admin API, with a token it did not create.
	oncall := s.w.client(s.w.tokenFromLead("oncall@example.com", "approver"))
	if out, errOut, code := oncall.rekey("", "approve", r.ID, "--comment", "the broken caller is fixed"); code != 0 {
		t.Fatalf("approve: exit %d: %s%s", code, out, errOut)
	}
	done := s.waitDone(r.ID, 30*time.Second)
	if done.Phase != "done" {
		t.Fatalf("rotation ended %s: %s %s", done.Phase, done.Outcome, done.LastError)
	}
	events := s.audit(r.ID)
	revoked, watched := event(t, events, "revoked"), event(t, events, "watched")
	lastFailure := fixed.Spans[len(fixed.Spans)-1].LastAnsweredAt
	if !lastFailure.Before(revoked.At) {
		t.Fatalf("the broken consumer's last 401 at %s is not before the revoke at %s", lastFailure, revoked.At)
	}
	if watched.Detail["alerted"] != "false" || watched.Detail["readings"] == "0" {
		t.Fatalf("the watch alerted on traffic from before the revoke, or read nothing: %+v", watched.Detail)
	}
	if alerts := s.notified(r.ID, "rotation.watch_alert"); len(alerts) > 0 {
		t.Fatalf("watch alert on pre-revoke traffic: %+v", alerts)
	}
	fol := follower.stop()
	if fol.Failures != 0 {
		t.Fatalf("the follower failed %d requests", fol.Failures)
	}
	t.Logf("figures: last pre-revoke 401 %s before the revoke; watch %s readings, alerted %s",
		revoked.At.Sub(lastFailure).Round(time.Millisecond), watched.Detail["readings"], watched.Detail["alerted"])
	s.d.stop()
	s.w.scanForSecrets()
}
