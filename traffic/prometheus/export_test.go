package prometheus

import "time"

// SetClock replaces the source's clock, for the execution-error grace.
func SetClock(s *Source, now func() time.Time) { s.now = now }

// ExecutionGrace is how long an execution error stays retryable.
const ExecutionGrace = executionGrace
