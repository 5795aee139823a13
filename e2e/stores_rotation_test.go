package e2e

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// storeRead is one read of the background consumer.
type storeRead struct {
	store      string // "vault" or "aws"
	start, end time.Time
	value      string
	err        error
}

// storeReader reads the consumer-visible value of every store of a target
// in a tight loop (one goroutine per store) until stopped, and records
// every read.
type storeReader struct {
	mu    sync.Mutex
	reads []storeRead
	stop  chan struct{}
	done  chan struct{}
}

func (k *storeKit) startReader(tg storeTarget) *storeReader {
	r := &storeReader{stop: make(chan struct{}), done: make(chan struct{})}
	ctx := context.Background()
	var wg sync.WaitGroup
	loop := func(store string, read func() (string, error)) {
		wg.Go(func() {
			for {
				select {
				case <-r.stop:
					return
				default:
				}
				r.record(store, read)
			}
		})
	}
	if tg.vault != "" {
		loop("vault", func() (string, error) { return k.vaultCurrent(ctx, tg.vault) })
	}
	if tg.aws != "" {
		loop("aws", func() (string, error) { return k.awsCurrent(ctx, tg.aws) })
	}
	go func() { wg.Wait(); close(r.done) }()
	return r
}

func (r *storeReader) record(store string, read func() (string, error)) {
	start := time.Now()
	v, err := read()
	rd := storeRead{store: store, start: start, end: time.Now(), value: v, err: err}
	r.mu.Lock()
	r.reads = append(r.reads, rd)
	r.mu.Unlock()
}

// finish stops the reader and returns every read.
func (r *storeReader) finish() []storeRead {
	close(r.stop)
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reads)
}

// storePoll is one poll of a rotation through the admin API.
type storePoll struct {
	sent, recv time.Time
	phase      string
	lastError  string
}

// watch polls the rotation every few milliseconds until it is terminal and
// returns every poll.
func (w *storeWorld) watch(id string, within time.Duration) []storePoll {
	w.t.Helper()
	var polls []storePoll
	deadline := patient(within)
	for time.Now().Before(deadline) {
		sent := time.Now()
		r := w.rotation(id)
		polls = append(polls, storePoll{sent: sent, recv: time.Now(), phase: r.Phase, lastError: r.LastError})
		switch r.Phase {
		case "done", "failed", "cancelled", "denied", "expired":
			return polls
		}
		time.Sleep(10 * time.Millisecond)
	}
	w.t.Fatalf("rotation %s not finished in %s; last seen %+v", id, within, polls[len(polls)-1])
	return nil
}

// Phases of a staged rotation before the new key is made current anywhere,
// and once it is current everywhere. "" is the moment before the trigger.
var (
	storePhasesBefore = []string{"", "awaiting_approval", "minting", "staging", "verifying"}
	storePhasesAfter  = []string{"draining", "revoking", "watching", "cleaning", "done"}
)

// checkStoreTimeline proves, for one store, what a consumer saw during the
// rotation: no read failed with not-found or returned no value; every value
// was the old or the new key; the values went old… then new… and never
// back; a read that ended before a poll still showed a phase before
// cut-over returned the old key, one that began after a poll showed a
// phase past cut-over returned the new key; and reads happened while the
// rotation was seen draining and watching.
func checkStoreTimeline(t *testing.T, store string, reads []storeRead, polls []storePoll, oldV, newV string) {
	t.Helper()
	var lastBefore, firstAfter time.Time
	for _, p := range polls {
		if slices.Contains(storePhasesBefore, p.phase) && p.sent.After(lastBefore) {
			lastBefore = p.sent
		}
		if slices.Contains(storePhasesAfter, p.phase) && (firstAfter.IsZero() || p.recv.Before(firstAfter)) {
			firstAfter = p.recv
		}
	}
	if lastBefore.IsZero() || firstAfter.IsZero() {
		t.Fatalf("%s: the rotation was not observed both before and after cut-over", store)
	}
	// Phase windows: runs of consecutive polls that showed the same phase;
	// a read that lies entirely inside one happened during that phase.
	type window struct {
		phase    string
		from, to time.Time
	}
	var windows []window
	for i := 0; i < len(polls); {
		j := i
		for j+1 < len(polls) && polls[j+1].phase == polls[i].phase {
			j++
		}
		windows = append(windows, window{polls[i].phase, polls[i].recv, polls[j].sent})
		i = j + 1
	}
	perPhase := map[string]int{}
	var seq []string
	ok, failed := 0, 0
	sawNew := false
	for _, r := range reads {
		if r.store != store {
			continue
		}
		at := r.start.Format(time.StampMicro)
		if r.err != nil {
			if storeNotFound(r.err) {
				t.Fatalf("%s: a consumer read found no current value at %s: %v", store, at, r.err)
			}
			failed++ // moto answers 500 now and then under concurrent load
			continue
		}
		ok++
		switch r.value {
		case oldV:
			if sawNew {
				t.Fatalf("%s: a consumer read the old key again after the new one (at %s)", store, at)
			}
			if r.start.After(firstAfter) {
				t.Fatalf("%s: a consumer read the old key after the rotation was seen past cut-over (at %s)", store, at)
			}
			if len(seq) == 0 {
				seq = append(seq, "old")
			}
		case newV:
			if r.end.Before(lastBefore) {
				t.Fatalf("%s: a consumer read the new key before the rotation was seen reaching cut-over (at %s)", store, at)
			}
			if !sawNew {
				seq = append(seq, "new")
			}
			sawNew = true
		default:
			t.Fatalf("%s: a consumer read a value that is neither the old nor the new key (at %s)", store, at)
		}
		for _, win := range windows {
			if !r.start.Before(win.from) && !r.end.After(win.to) {
				perPhase[win.phase]++
			}
		}
	}
	if !slices.Equal(seq, []string{"old", "new"}) {
		t.Fatalf("%s: the consumer saw %v, want old then new", store, seq)
	}
	if failed > ok/10 {
		t.Fatalf("%s: %d of %d reads failed", store, failed, ok+failed)
	}
	for _, p := range []string{"draining", "watching"} {
		if perPhase[p] == 0 {
			t.Errorf("%s: no consumer read while the rotation was %s (reads per phase %v)", store, p, perPhase)
		}
	}
	t.Logf("%s: %d reads (%d transient failures); reads per observed phase %v", store, ok, failed, perPhase)
}

// phasesOf lists the distinct phases of the polls, in order.
func phasesOf(polls []storePoll) []string {
	var out []string
	for _, p := range polls {
		if len(out) == 0 || out[len(out)-1] != p.phase {
			out = append(out, p.phase)
		}
	}
	return out
}

// Full staged rotations into Vault, into Secrets Manager, and into both at
// once for one key. A background consumer reads the current value of every
// store in a tight loop during the whole rotation while the admin API is
// polled for the phase (quiet and watch periods long enough to be seen):
// every read returns the old or the new key, never not-found, old… then
// new…, consistent with the phase seen at the time.
func TestStoresStagedRotation(t *testing.T) {
	t.Parallel()
	kit := newStoreKit(t)
	for name, both := range map[string][2]bool{
		"vault":         {true, false},
		"secrets-mgr":   {false, true},
		"vault+secrets": {true, true},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var tg storeTarget
			if both[0] {
				tg.vault = storeName(t)
			}
			if both[1] {
				tg.aws = storeName(t)
			}
			c := ctx(t)
			w := kit.world(t, tg, storesOpts{quiet: "1500ms", watch: "1s"})
			k := w.kit
			d := w.startDaemon()
			w.bootstrap("api")
			oldV := k.mustCurrent(c, tg)

			rd := k.startReader(tg)
			triggered := time.Now()
			id := w.rotate()
			polls := append([]storePoll{{sent: triggered, recv: triggered}}, w.watch(id, 30*time.Second)...)
			reads := rd.finish()
			if last := polls[len(polls)-1]; last.phase != "done" {
				t.Fatalf("rotation ended %s: %s", last.phase, last.lastError)
			}
			newV := k.mustCurrent(c, tg)
			if newV == oldV {
				t.Fatal("the rotation did not change the current value")
			}
			t.Logf("phases observed: %v", phasesOf(polls))
			if tg.vault != "" {
				checkStoreTimeline(t, "vault", reads, polls, oldV, newV)
			}
			if tg.aws != "" {
				checkStoreTimeline(t, "aws", reads, polls, oldV, newV)
			}
			w.checkEnd(c, newV)
			if !w.oldRevoked() {
				t.Fatal("the old credential was not revoked")
			}
			d.stop()
			w.scanForSecrets()
		})
	}
}
