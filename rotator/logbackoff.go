package rotator

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// quietLog logs a failure that repeats (the store unreachable: every poll
// fails the same way) with backoff: the first occurrence at once, then at
// most once per interval, the interval doubling from logBackoffMin to
// logBackoffMax, each line saying how many were left out. A success (ok)
// resets the key and says the failure ended.
type quietLog struct {
	log *slog.Logger
	now func() time.Time
	mu  sync.Mutex
	by  map[string]*quietState
}

type quietState struct {
	next       time.Time
	every      time.Duration
	suppressed int
	since      time.Time
}

const (
	logBackoffMin = 2 * time.Second
	logBackoffMax = 5 * time.Minute
)

func newQuietLog(l *slog.Logger) *quietLog {
	return &quietLog{log: l, now: time.Now, by: map[string]*quietState{}}
}

func (q *quietLog) warn(key, msg string, args ...any) { q.emit(slog.LevelWarn, key, msg, args...) }
func (q *quietLog) error(key, msg string, args ...any) {
	q.emit(slog.LevelError, key, msg, args...)
}

func (q *quietLog) emit(level slog.Level, key, msg string, args ...any) {
	now := q.now()
	q.mu.Lock()
	st, ok := q.by[key]
	if !ok {
		st = &quietState{every: logBackoffMin, since: now}
		q.by[key] = st
	}
	if ok && now.Before(st.next) {
		st.suppressed++
		q.mu.Unlock()
		return
	}
	suppressed := st.suppressed
	st.suppressed = 0
	if ok {
		st.every = min(2*st.every, logBackoffMax)
	}
	st.next = now.Add(st.every)
	since := st.since
	q.mu.Unlock()
	if suppressed > 0 {
		args = append(args, "repeated", suppressed, "failing_since", since.UTC().Format(time.RFC3339))
	}
	q.log.Log(context.Background(), level, msg, args...)
}

// ok ends a failure: it logs once that it recovered, if it had failed.
func (q *quietLog) ok(key, msg string) {
	q.mu.Lock()
	st, failed := q.by[key]
	delete(q.by, key)
	q.mu.Unlock()
	if failed {
		q.log.Info(msg, "failing_since", st.since.UTC().Format(time.RFC3339), "down_for", q.now().Sub(st.since).Round(time.Millisecond).String())
	}
}
