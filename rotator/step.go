package rotator

import (
	"context"
	"time"
)

// farFuture is the next-attempt time of a hold that only a human clears.
var farFuture = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// step is one execution of a rotation's current phase. Step functions
// (the table's rows) read what they need, perform at most one side effect
// at a time through sideEffect, and return an outcome; they never write the
// phase, commit or notify (interpreter.go does).
type step struct {
	e     *Engine
	k     *Key
	r     *Rotation
	creds map[int]*Credential
	// done, when set, is closed once the step must stop (its lease is lost,
	// the daemon stops): no further sink is written.
	done <-chan struct{}
	// dead: issuer ids a resumed mint must not deliver (deadIDs); nil
	// on an intent's first attempt.
	dead map[string]bool
}

func (s *step) now() time.Time { return s.e.clock.Now() }

func (s *step) oldCred() *Credential { return s.creds[s.r.OldGeneration] }
func (s *step) newCred() *Credential { return s.creds[s.r.NewGeneration] }

// auditEvent is an audit record of this rotation by rekey itself, for an
// outcome to carry beside its own.
func (s *step) auditEvent(action string, detail map[string]string) AuditEvent {
	return AuditEvent{At: s.now(), RotationID: s.r.ID, Key: s.r.Key, Actor: "rekey", Action: action, Phase: s.r.Phase, Detail: detail}
}

// event is a notification about this rotation, for an outcome to carry.
func (s *step) event(kind string, sev Severity, msg string, fields map[string]string) Event {
	return Event{Kind: kind, Severity: sev, Message: msg, Fields: fields}
}

func (s *step) ref(c *Credential) CredentialRef {
	return CredentialRef{Key: c.Key, RotationID: s.r.ID, Name: c.Name, Generation: c.Generation, ID: c.IssuerID, Fingerprint: c.Fingerprint, Params: s.k.Params}
}

func (s *step) delivery(secret Secret) Delivery {
	d := Delivery{RotationID: s.r.ID, Secret: secret}
	if c := s.newCred(); c != nil {
		d.Generation, d.Fingerprint = c.Generation, c.Fingerprint
	}
	if c := s.oldCred(); c != nil {
		d.OldGeneration, d.OldFingerprint = c.Generation, c.Fingerprint
	}
	return d
}

// eachSink runs f for every sink of the key, stopping at the first error.
func (s *step) eachSink(f func(b SinkBinding) error) error {
	for _, b := range s.k.Sinks {
		select {
		case <-s.done:
			return context.Canceled
		default:
		}
		start := time.Now()
		err := f(b)
		s.e.metrics.call("sink", b.SinkName, string(s.r.Phase), start, err)
		if err != nil {
			return err
		}
	}
	return nil
}

// mintAt asks the issuer for a credential, timing the call.
func (s *step) mintAt(ctx context.Context, req MintRequest) (Minted, error) {
	start := time.Now()
	m, err := s.k.Issuer.Mint(ctx, req)
	s.e.metrics.call("issuer", s.k.IssuerName, "mint", start, err)
	return m, err
}

// revokeAt revokes a credential at the issuer, timing the call.
func (s *step) revokeAt(ctx context.Context, ref CredentialRef) error {
	start := time.Now()
	err := s.k.Issuer.Revoke(ctx, ref)
	s.e.metrics.call("issuer", s.k.IssuerName, "revoke", start, err)
	return err
}

// scrub removes a rotation's in-memory secret from a message, a last line of
// defence should an adapter echo it.
func (e *Engine) scrub(rotationID, msg string) string {
	if sec, ok := e.getSecret(rotationID); ok {
		return sec.Scrub(msg)
	}
	return msg
}

func (e *Engine) putSecret(id string, s Secret) {
	e.mu.Lock()
	e.secrets[id] = s
	e.mu.Unlock()
}

func (e *Engine) getSecret(id string) (Secret, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.secrets[id]
	return s, ok
}

func (e *Engine) dropSecret(id string) {
	e.mu.Lock()
	delete(e.secrets, id)
	e.mu.Unlock()
}
