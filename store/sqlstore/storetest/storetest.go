// Package storetest is the conformance suite every rotator.Store in
// store/... must pass: the SQLite and PostgreSQL stores run the same tests,
// including the ones that prove invariant 6 (one active rotation per key,
// across daemons) and the tamper evidence of the audit chain. Tests that
// edit rows behind the store's back need a *sqlstore.Store.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/rekeyhq/rekey/rotator"
	"github.com/rekeyhq/rekey/store/sqlstore"
)

// Run runs the conformance suite. open returns a new, empty store for t and
// closes it when t ends; every subtest calls it for a store of its own and
// runs in parallel with the others.
func Run(t *testing.T, open func(t *testing.T) rotator.Store) {
	tests := map[string]func(t *testing.T, s rotator.Store){
		"RotationRoundTrip":       testRotationRoundTrip,
		"NotFound":                testNotFound,
		"OptimisticConflict":      testOptimisticConflict,
		"ListRotations":           testListRotations,
		"DueRotations":            testDueRotations,
		"OneActivePerKey":         testOneActivePerKey,
		"ConcurrentCreate":        func(t *testing.T, s rotator.Store) { concurrentCreate(t, s, s) },
		"Lease":                   testLease,
		"ConcurrentLease":         func(t *testing.T, s rotator.Store) { concurrentLease(t, s, s) },
		"CredentialsUpsert":       testCredentialsUpsert,
		"WorkingCredentials":      testWorkingCredentials,
		"Approvals":               testApprovals,
		"AuditFilters":            testAuditFilters,
		"AuditConcurrentAppends":  func(t *testing.T, s rotator.Store) { concurrentAudit(t, s, s) },
		"AuditUncleanText":        testAuditUncleanText,
		"AuditKeyed":              testAuditKeyed,
		"KeyStates":               testKeyStates,
		"SaveIsAtomic":            testSaveIsAtomic,
		"FingerprintedRunIsClean": testFingerprintedRun,
		"AdapterState":            testAdapterState,
		"APITokens":               testAPITokens,
		"Consumers":               testConsumers,
		"Totals":                  testTotals,
		"LeaseFencing":            testLeaseFencing,
		"LeaseTakeover":           testLeaseTakeover,
		"OutboxReleaseOwnClaim":   testOutboxReleaseOwnClaim,
		"Members":                 testMembers,
		"CreateBasedOn":           testCreateBasedOn,
	}
	for name, test := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, open(t))
		})
	}
	t.Run("AuditTamper", func(t *testing.T) {
		t.Parallel()
		testAuditTamper(t, open)
	})
}

// RunShared runs the multi-daemon tests. open returns two stores on one new,
// empty database, through separate handles (connection pools) as two daemons
// would hold them, and closes both when t ends.
func RunShared(t *testing.T, open func(t *testing.T) (a, b rotator.Store)) {
	tests := map[string]func(t *testing.T, a, b rotator.Store){
		"ConcurrentCreate":       concurrentCreate,
		"ConcurrentLease":        concurrentLease,
		"AuditConcurrentAppends": concurrentAudit,
		"OptimisticConflict":     sharedConflict,
	}
	for name, test := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a, b := open(t)
			test(t, a, b)
		})
	}
}

// base is the suite's reference time: nanoseconds set, to prove they
// survive, and far from the zero time.
var base = time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)

// farFuture is where the engine parks a rotation only a human can resume.
var farFuture = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newRotation returns a staged rotation of key in its first phase.
func newRotation(id, key string) *rotator.Rotation {
	return &rotator.Rotation{
		ID: id, Key: key, Trigger: rotator.TriggerAge, Actor: "policy:maxage", Reason: "age: 91d > 90d",
		Mode: rotator.ModeStaged, Phase: rotator.PhaseMinting, OldGeneration: 1,
		NextAttemptAt: base, CreatedAt: base, UpdatedAt: base, PhaseStartedAt: base,
	}
}

func event(rotationID, key, action string) rotator.AuditEvent {
	return rotator.AuditEvent{At: base, RotationID: rotationID, Key: key, Actor: "engine", Action: action,
		Phase: rotator.PhaseMinting, Detail: map[string]string{"note": action}}
}

// create stores r with one audit event and fails the test on error.
func create(t *testing.T, s rotator.Store, r *rotator.Rotation, creds ...*rotator.Credential) {
	t.Helper()
	if err := s.CreateRotation(ctxFor(t), rotator.Commit{Rotation: r, Credentials: creds,
		Audit: []rotator.AuditEvent{event(r.ID, r.Key, "rotation.started")}}); err != nil {
		t.Fatalf("create rotation %s: %v", r.ID, err)
	}
}

func save(t *testing.T, s rotator.Store, c rotator.Commit) {
	t.Helper()
	if err := s.Save(ctxFor(t), c); err != nil {
		t.Fatalf("save: %v", err)
	}
}

func get(t *testing.T, s rotator.Store, id string) *rotator.Rotation {
	t.Helper()
	r, err := s.GetRotation(ctxFor(t), id)
	if err != nil {
		t.Fatalf("get rotation %s: %v", id, err)
	}
	return r
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want one wrapping %q", what, err, target)
	}
}

// utc returns a copy of r with every time in UTC (as the store returns
// them), for comparisons.
func utc(r rotator.Rotation) rotator.Rotation {
	for _, p := range []*time.Time{&r.NextAttemptAt, &r.CreatedAt, &r.UpdatedAt, &r.PhaseStartedAt, &r.FinishedAt,
		&r.Drain.StartedAt, &r.Drain.QuietSince, &r.Watch.StartedAt} {
		if !p.IsZero() {
			*p = p.UTC()
		}
	}
	if r.Waiting != nil {
		w := *r.Waiting
		w.Since, w.NextCheck, w.Deadline = w.Since.UTC(), w.NextCheck.UTC(), w.Deadline.UTC()
		r.Waiting = &w
	}
	return r
}

func sameRotation(t *testing.T, got, want *rotator.Rotation) {
	t.Helper()
	if g, w := utc(*got), utc(*want); !reflect.DeepEqual(g, w) {
		t.Fatalf("rotation %s differs:\n got %+v\nwant %+v", want.ID, g, w)
	}
}

func ids(rs []*rotator.Rotation) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

// sqlStore returns s as a *sqlstore.Store, for the tests that need SQL.
func sqlStore(t *testing.T, s rotator.Store) *sqlstore.Store {
	t.Helper()
	ss, ok := s.(*sqlstore.Store)
	if !ok {
		t.Fatalf("store is a %T, not a *sqlstore.Store", s)
	}
	return ss
}

// exec runs a statement written with ? placeholders behind the store's back.
func exec(t *testing.T, s *sqlstore.Store, query string, args ...any) {
	t.Helper()
	if _, err := s.DB().ExecContext(ctxFor(t), s.Dialect().Rebind(query), args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// verify returns the store's audit verification problems.
func verify(t *testing.T, s rotator.Store) []rotator.AuditProblem {
	t.Helper()
	problems, err := sqlStore(t, s).VerifyAudit(ctxFor(t))
	if err != nil {
		t.Fatalf("verify audit: %v", err)
	}
	return problems
}

func verifyClean(t *testing.T, s rotator.Store) {
	t.Helper()
	if problems := verify(t, s); len(problems) > 0 {
		t.Fatalf("audit chain broken: %+v", problems)
	}
}

func allAudit(t *testing.T, s rotator.Store) []rotator.AuditEvent {
	t.Helper()
	evs, err := s.Audit(ctxFor(t), rotator.AuditFilter{})
	if err != nil {
		t.Fatalf("audit: %v", err)
	}
	return evs
}

func name(prefix string, i int) string { return fmt.Sprintf("%s-%03d", prefix, i) }

// appendAudit records events that belong to no rotation.
func appendAudit(ctx context.Context, s rotator.Store, evs ...rotator.AuditEvent) error {
	return s.Save(ctx, rotator.Commit{Audit: evs})
}

// addApproval records a decision with its event (none when ev has no action).
func addApproval(ctx context.Context, s rotator.Store, a rotator.Approval, ev rotator.AuditEvent) error {
	c := rotator.Commit{Approvals: []rotator.Approval{a}}
	if ev.Action != "" {
		c.Audit = []rotator.AuditEvent{ev}
	}
	return s.Save(ctx, c)
}
