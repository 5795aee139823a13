package rotator

import (
	"context"
	"time"
)

// ExposureReport says a secret was seen where it must not be (a log, a
// repository, a screenshot). It carries the secret only as a fingerprint:
// inbound adapters hash a reported token at once and drop it.
type ExposureReport struct {
	// ID de-duplicates: the same report twice triggers one rotation. Use the
	// sender's delivery id, or a hash of the signed body.
	ID          string
	Via         string // generic, github-partner, github-alert, cli
	Source      string // e.g. "github", "trufflehog", "gitleaks"
	URL         string // where it was seen
	Fingerprint string // hex SHA-256 of the exposed token
	Type        string // scanner's token type, if any
	KeyHint     string // optional: the rekey key the reporter believes it is
	ReceivedAt  time.Time
	// ContainOnly: the source is trusted to contain, not to revoke — a
	// match starts the emergency at once, but its revoke waits for a
	// responder.
	ContainOnly bool `json:",omitempty"`
	// Proof: the reporter sent the token itself, not only its fingerprint.
	Proof bool `json:",omitempty"`
	// Reporter is the authenticated person who submitted the report (the
	// admin API's POST /v1/report), recorded as the emergency's actor;
	// empty for a webhook sender, which is recorded as exposure:<via>.
	Reporter string `json:",omitempty"`
}

// ExposureResult is what became of one report.
type ExposureResult struct {
	// Known reports whether the fingerprint matched a credential that was
	// not yet revoked (current, pending or previous).
	Known      bool
	Key        string
	Generation int
	RotationID string // the emergency rotation started or already running
	Duplicate  bool   // the same report ID was accepted before
	// Live reports whether the credential it matched is still not revoked
	// now. For a first report it is Known; for a duplicate it is read
	// again: the emergency the first report started may have revoked it
	// since (Known still says what the report matched when first received).
	Live bool
}

// DepartureReport says a person left.
type DepartureReport struct {
	ID     string // de-duplication id
	Email  string
	UserID string
	// Via names the authenticated sender (the departure webhook's name):
	// the rotations it starts are recorded as by departure:<via>.
	Via string `json:",omitempty"`
	// Actor is who the sender says reported it (an HR system's user, an
	// admin's script). It is not authenticated: kept only as audit detail,
	// never the rotations' requester.
	Actor      string
	ReceivedAt time.Time
}

// DepartureResult lists what the departure started.
type DepartureResult struct {
	Staged    []string // keys rotated in staged mode (other owners remain)
	Emergency []string // keys revoked at once (no other owner)
	Rotations []string
	// Waiting: keys whose rotation in flight minted its new generation
	// before the departure; each is rotated again once that one ends.
	Waiting   []string
	Duplicate bool
}

// Intake is how inbound adapters (webhooks, `rekey report`) hand events to
// the engine. Each call durably records the event before it returns, so an
// adapter may answer 2xx as soon as it returns without error: an accepted
// report is never lost, even if the process dies right after.
type Intake interface {
	ReportExposure(ctx context.Context, r ExposureReport) (ExposureResult, error)
	ReportDeparture(ctx context.Context, r DepartureReport) (DepartureResult, error)
}

// ReplayGuard remembers message ids for replay protection. Seen records id
// in namespace until `until` and reports whether it had been recorded
// before (a replay). Implementations are durable and shared across daemons.
type ReplayGuard interface {
	Seen(ctx context.Context, namespace, id string, until time.Time) (bool, error)
}
