package rotator

import (
	"context"
	"fmt"
)

// EmergencyInstructor is an optional HumanIssuer capability: the one
// message of an emergency by hand, which asks a person to revoke the leaked
// credential now and mint its replacement in the same visit. Without it the
// engine joins RevokeInstructions and MintInstructions under a headline
// (LEAKED for an exposure).
type EmergencyInstructor interface {
	EmergencyInstructions(req EmergencyRequest) string
}

// EmergencyRequest is what the one message of an emergency by hand is
// about: the credential to revoke now, why, and its replacement.
type EmergencyRequest struct {
	Leaked      CredentialRef
	Replacement MintRequest
	// Headline is the message's first word ("LEAKED"); Why completes
	// "the API key X of K …" ("is exposed").
	Headline string
	Why      string
}

// EmergencyWhy says, per trigger, why a key's credential must go now: a
// headline ("LEAKED") and the rest of "the API key X of K …" ("is exposed").
func EmergencyWhy(t Trigger) (headline, why string) { return emergencyWhy(t) }

// emergencyWhy says, per trigger, why a key must go now.
func emergencyWhy(t Trigger) (headline, why string) {
	switch t {
	case TriggerUnauthorized:
		return "UNEXPLAINED USE", "is used by an unknown caller"
	case TriggerDeparture:
		return "OWNER LEFT", "was held by a person who left"
	}
	return "LEAKED", "is exposed"
}

// RevokeChecker is an optional HumanIssuer capability: probe a credential a
// person says they revoked. revoked is true only when the issuer refused it
// as unknown or invalid (401); false with a nil error means it still
// authenticates; an error means the probe could not tell.
type RevokeChecker interface {
	CheckRevoked(ctx context.Context, key string, old Secret, params map[string]any) (revoked bool, err error)
}

// containByHand is the first phase of an emergency by hand: a contained
// emergency waits for a responder before anyone is asked to revoke; then
// the person is asked for both the revocation and the replacement (or, for
// a generation that is not the current one, for the revocation only).
func (s *step) containByHand(ctx context.Context) outcome {
	if s.r.Contain != "" {
		o, passed := s.gate(ctx, GateRevoke, outcome{}, 1, 0)
		if !passed {
			if o.kind == outHold {
				o.why = containedWhy(s.r.Contain) + " — " + o.why
				o.sev = SeverityCritical
			}
			return o
		}
	}
	if s.r.OldGeneration != 0 && s.r.TargetGeneration != s.r.OldGeneration {
		return advance("revoke.requested", map[string]string{"generation": fmt.Sprint(s.r.TargetGeneration), "replacement": "none: not the current generation"}).via(EdgeNotCurrent)
	}
	return advance("revoke.requested", map[string]string{"generation": fmt.Sprint(s.r.TargetGeneration)})
}

// byHand reports whether the rotation is an emergency a person handles.
func (s *step) byHand() bool { return s.r.Lifecycle == lifecycleByHand }

// leaked is the credential an emergency by hand asks a person to revoke.
func (s *step) leaked() *Credential { return s.creds[s.r.TargetGeneration] }

// emergencyMintWhy is the hold of an emergency by hand waiting for the
// replacement: revoke and mint in one visit while the leaked key is live;
// once it is confirmed revoked, consumers have no working key until the
// replacement is submitted.
func (s *step) emergencyMintWhy(h HumanIssuer, c *Credential) string {
	req := s.mintRequest(c)
	req.Emergency = true // the leaked key goes now: never "do not revoke it yet"
	old := s.leaked()
	if old == nil || old.State == CredRevoked {
		return fmt.Sprintf("URGENT: the leaked key is confirmed revoked and consumers of %s have no working key until its replacement is submitted. %s",
			s.r.Key, h.MintInstructions(req))
	}
	headline, why := emergencyWhy(s.r.Trigger)
	if ei, ok := h.(EmergencyInstructor); ok {
		return ei.EmergencyInstructions(EmergencyRequest{Leaked: s.ref(old), Replacement: req, Headline: headline, Why: why})
	}
	return fmt.Sprintf("%s: %s %s and still works. Revoke it now and mint its replacement in the same visit. %s %s Run both commands in either order.",
		headline, old.Name, why, h.RevokeInstructions(s.ref(old)), h.MintInstructions(req))
}

// confirmed waits, in an emergency by hand, for the person's confirmation
// that the leaked key is revoked; when it came first it passes at once.
func (s *step) confirmed(context.Context) outcome {
	c := s.leaked()
	if c == nil || c.State == CredRevoked {
		return advance("revoke.confirmed", map[string]string{"generation": fmt.Sprint(s.r.TargetGeneration)})
	}
	h, ok := s.k.Issuer.(HumanIssuer)
	if !ok {
		return failed(Permanent(fmt.Errorf("rotation %s: issuer %s no longer takes confirmations; revoke %s and record it", s.r.ID, s.k.IssuerName, c.Name)))
	}
	headline, _ := emergencyWhy(s.r.Trigger)
	why := headline + ": " + c.Name + " still works until you revoke it. "
	if nc := s.newCred(); nc != nil && nc.State == CredCurrent {
		why += "Its replacement " + nc.Name + " is live in every sink. "
	}
	return holdFor(HoldConfirm, why+h.RevokeInstructions(s.ref(c)), zeroTime, SeverityCritical)
}
