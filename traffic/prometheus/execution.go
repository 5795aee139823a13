package prometheus

import (
	"errors"
	"fmt"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// executionGrace is how long a query may keep failing with an execution
// error (HTTP 422) before the drain gate treats it as broken and asks a
// human. Prometheus answers 422 for two different things: a query that
// cannot run on the data (many-to-many matching), which stays broken, and
// a storage that is not there for a moment (before 2.45, "can't read from a
// closed head" while the server shuts down), which clears when it restarts.
// Until the grace runs out the error is retryable: the gate does not pass
// on it either way, it only waits for a person later.
const executionGrace = time.Minute

// executionError marks an HTTP 422 answer.
type executionError struct{ err error }

func (e *executionError) Error() string { return e.err.Error() }
func (e *executionError) Unwrap() error { return e.err }

// judgeExecution classifies err for the query asked under id (key and
// question): an execution error is retryable until it has lasted
// executionGrace without an answer in between, then permanent. Any other
// outcome forgets the run of failures.
func (s *Source) judgeExecution(id string, err error) error {
	var ee *executionError
	s.mu.Lock()
	defer s.mu.Unlock()
	if !errors.As(err, &ee) {
		delete(s.failingSince, id)
		return err
	}
	now := s.now()
	since, ok := s.failingSince[id]
	if !ok {
		since = now
		s.failingSince[id] = now
	}
	if failing := now.Sub(since); failing >= executionGrace {
		return rotator.PermanentReason(rotator.ReasonInvalid, fmt.Errorf("%w (failing for %s)", ee.err, failing.Round(time.Second)))
	}
	return rotator.WithReason(rotator.ReasonTransient,
		fmt.Errorf("%w (retrying for up to %s: Prometheus also answers this while its storage restarts)", ee.err, executionGrace))
}
