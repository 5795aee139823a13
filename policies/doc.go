// Package policies holds the rules that decide when a key must rotate. A
// policy is a pure function of rotator.PolicyInput: it reads the key, its
// current credential, its active rotation and the time the engine injects
// (PolicyInput.Now), and returns a rotator.Decision; it does no I/O and
// never reads a clock of its own, so every branch is testable with fixed
// times. Policies run in the key's configured order (rotator.Evaluate): the
// first Rotate or Emergency wins, a Warn is kept while later policies may
// still ask for more. One file per policy.
//
// Every Decision carries one of the reason constants below in Reason (a
// stable, machine-readable value for audit events, metrics and alerts) and a
// human sentence in Detail.
//
// maxage (MaxAge) — rotate on a schedule:
//
//   - ReasonNoCredential ("no_credential"): the key has no current
//     credential; ActionNone, the engine's bootstrap mints the first one.
//   - ReasonUnknownAge ("unknown_age"): the current credential has no
//     creation time; ActionWarn so that a human looks, rather than rotating
//     every such key at once.
//   - ReasonWithinMaxAge ("within_max_age"): younger than
//     max_age − warn_before; ActionNone with Due = created + max_age.
//   - ReasonMaxAgeApproaching ("max_age_approaching"): within warn_before of
//     max_age; ActionWarn with Due = created + max_age.
//   - ReasonMaxAgeExceeded ("max_age_exceeded"): at least max_age old;
//     ActionRotate with Trigger age and Due = created + max_age.
package policies
