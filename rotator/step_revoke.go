package rotator

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// revoke revokes the old credential: after the revoke gate and a re-check
// of every sink in staged mode; first thing in emergency mode; every live
// generation, one at a time, when decommissioning.
func (s *step) revoke(ctx context.Context) outcome {
	switch {
	case s.r.Trigger == TriggerDecommission && s.k.Decommission.SecondPerson:
		// Two people: someone other than the requester approves before
		// anything is revoked (no expiry: the decision stays open).
		o, passed := s.gate(ctx, GateRevoke, outcome{}, 1, 0)
		if !passed {
			if o.kind == outHold {
				o.why = fmt.Sprintf("decommission of %s needs a second person: someone other than %s approves (rekey approve %s) before anything is revoked — %s",
					s.r.Key, s.r.Actor, s.r.ID, o.why)
			}
			return o
		}
		return s.revokeAll()
	case s.r.Trigger == TriggerDecommission:
		return s.revokeAll()
	case s.r.Mode == ModeEmergency && s.r.Contain != "":
		// Contained: a responder approves the revoke (no expiry: an
		// exposure does not go away by waiting).
		o, passed := s.gate(ctx, GateRevoke, outcome{}, 1, 0)
		if !passed {
			if o.kind == outHold {
				o.why = containedWhy(s.r.Contain) + " — " + o.why
				o.sev = SeverityCritical
			}
			return o
		}
		return s.revokeEmergency()
	case s.r.Mode == ModeEmergency:
		return s.revokeEmergency()
	}
	if s.k.Approval.Needs(GateRevoke) && s.r.Hold != HoldConfirm && s.r.Drain.Override != "exposure" {
		if o, passed := s.gate(ctx, GateRevoke, outcome{}, s.k.Approval.RequiredApprovals(GateRevoke), s.k.Approval.ExpireAfter); !passed {
			return o
		}
	}
	old := s.oldCred()
	if old == nil || old.State == CredRevoked {
		return advance("revoked", map[string]string{"already": "true"})
	}
	if err := s.checkAllCurrent(ctx); err != nil {
		return s.sinkCheckFailed(err)
	}
	o := s.revokeCred(old, EdgeOK)
	if s.r.Drain.RevokeIssuedAt.IsZero() && (o.kind == outAct || o.kind == outHold) {
		// The point of no return, committed before the call (an act's
		// intent) or with the request to revoke by hand (the hold).
		s.r.Drain.RevokeIssuedAt = s.now()
		if o.kind == outAct {
			o = o.recording("revoke.intent", map[string]string{"generation": fmt.Sprint(old.Generation), "issuer_id": old.IssuerID})
		}
	}
	return o
}

// sinkCheckHoldAfter is how many times in a row the re-check of the sinks
// before a staged revoke may refuse before the rotation holds for a person.
const sinkCheckHoldAfter = 3

// sinkCheckFailed handles a failed re-check of the sinks before a staged
// revoke. A sink that does not hold the new generation as current
// (ReasonInvariant) seldom heals by waiting: after sinkCheckHoldAfter
// attempts the rotation holds, critical, for a person who retries once the
// sink is fixed or — as long as no revoke was issued and the old key is
// live — cancels to roll back.
func (s *step) sinkCheckFailed(err error) outcome {
	if ReasonOf(err) != ReasonInvariant || IsPermanent(err) || s.r.Attempts+1 < sinkCheckHoldAfter {
		return failed(err)
	}
	msg := s.e.scrub(s.r.ID, err.Error())
	s.r.LastError, s.r.ErrorReason = msg, ReasonInvariant
	next := fmt.Sprintf("nothing was revoked and generation %d is still live: fix the sink, then retry (rekey retry %s), or cancel to roll back (rekey cancel %s)",
		s.r.OldGeneration, s.r.ID, s.r.ID)
	if revokeIssued(s.r) {
		next = fmt.Sprintf("a revoke of generation %d was already issued and may have taken effect: fix the sink, then retry (rekey retry %s)", s.r.OldGeneration, s.r.ID)
	}
	return holdFor(HoldFailed, fmt.Sprintf("the re-check of the sinks before the revoke failed %d times (%s); %s", s.r.Attempts+1, msg, next), zeroTime, SeverityCritical)
}

// checkAllCurrent re-reads every sink right before a staged revoke: the new
// credential must be current everywhere (invariant 1).
func (s *step) checkAllCurrent(ctx context.Context) error {
	c := s.newCred()
	if c == nil {
		return Permanent(fmt.Errorf("rotation %s: revoke without a new credential", s.r.ID))
	}
	return s.eachSink(func(b SinkBinding) error {
		st, err := b.Sink.Inspect(ctx, b.Target)
		if err != nil {
			return fmt.Errorf("sink %s: inspect %s before revoking: %w", b.SinkName, b.Target.Path, err)
		}
		if st.Current != c.Fingerprint {
			return WithReason(ReasonInvariant, fmt.Errorf("sink %s: %s does not hold generation %d as current; not revoking the old credential", b.SinkName, b.Target.Path, c.Generation))
		}
		return nil
	})
}

// revokeCred revokes c at the issuer (or holds for a human to do it and
// confirm) and leaves the phase by edge.
func (s *step) revokeCred(c *Credential, edge Edge) outcome {
	if h, ok := s.k.Issuer.(HumanIssuer); ok {
		why := h.RevokeInstructions(s.ref(c))
		if s.r.Hold == HoldConfirm {
			why = s.r.HoldDetail
		}
		return holdFor(HoldConfirm, why, zeroTime, SeverityWarning)
	}
	if !c.Minted() {
		return s.markRevoked(c, edge)
	}
	ref := s.ref(c)
	return sideEffect("", func(ctx context.Context) outcome {
		if err := s.revokeAt(ctx, ref); err != nil {
			return failed(fmt.Errorf("issuer %s: revoke %s: %w", s.k.IssuerName, c.Name, err))
		}
		return s.markRevoked(c, edge)
	})
}

func (s *step) markRevoked(c *Credential, edge Edge) outcome {
	cc := *c
	cc.State, cc.RevokedAt = CredRevoked, s.now()
	return advance("revoked", map[string]string{
		"generation": fmt.Sprint(c.Generation), "issuer_id": c.IssuerID, "by": "rekey",
	}).via(edge).with(&cc)
}

// revokeEmergency revokes the exposed or misused generation before
// anything else. When it is not the current one (a previous or pending
// generation) revoking it is the whole remedy: the current key stays, and
// the rotation only cleans it out of the sinks.
func (s *step) revokeEmergency() outcome {
	edge := EdgeOK
	if s.r.OldGeneration != 0 && s.r.TargetGeneration != s.r.OldGeneration {
		edge = EdgeNotCurrent
	}
	c := s.creds[s.r.TargetGeneration]
	if c == nil || c.State == CredRevoked {
		return advance("revoked", map[string]string{"already": "true"}).via(edge)
	}
	return s.revokeCred(c, edge)
}

// revokeAll revokes every live generation (decommission), oldest first,
// each recorded before the next; the last one leaves the phase.
func (s *step) revokeAll() outcome {
	var live []*Credential
	for _, c := range s.creds {
		if c.State != CredRevoked {
			live = append(live, c)
		}
	}
	sort.Slice(live, func(i, j int) bool { return live[i].Generation < live[j].Generation })
	switch _, human := s.k.Issuer.(HumanIssuer); {
	case len(live) == 0:
		return advance("revoked", map[string]string{"already": "true"})
	case len(live) == 1:
		return s.revokeCred(live[0], EdgeOK)
	case human:
		// A person revokes them all by hand; one confirmation covers all,
		// so the message names every one of them.
		o := s.revokeCred(live[len(live)-1], EdgeOK)
		if o.kind == outHold && s.r.Hold != HoldConfirm {
			names := make([]string, 0, len(live))
			for _, c := range live {
				names = append(names, c.Name)
			}
			o.why = fmt.Sprintf("Decommission of %s: revoke ALL %d of its live keys (%s), then confirm once. ", s.r.Key, len(live), strings.Join(names, ", ")) + o.why
		}
		return o
	}
	c := live[0]
	if !c.Minted() {
		return again("revoked", map[string]string{"generation": fmt.Sprint(c.Generation), "minted": "false"}).with(revokedCopy(c, s.now()))
	}
	ref := s.ref(c)
	return sideEffect("each", func(ctx context.Context) outcome {
		if err := s.revokeAt(ctx, ref); err != nil {
			return failed(fmt.Errorf("issuer %s: revoke %s: %w", s.k.IssuerName, c.Name, err))
		}
		return again("revoked", map[string]string{"generation": fmt.Sprint(c.Generation), "issuer_id": c.IssuerID}).with(revokedCopy(c, s.now()))
	})
}

func revokedCopy(c *Credential, at time.Time) *Credential {
	cc := *c
	cc.State, cc.RevokedAt = CredRevoked, at
	return &cc
}

func containedWhy(c string) string {
	switch c {
	case ContainBreaker:
		return "contained: the emergency breaker is open (too many emergency revocations at once); a responder approves to revoke, or releases the breaker"
	case ContainLowTrust:
		return "contained: reported by a source trusted only to contain; a responder approves to revoke"
	}
	return "contained (" + c + "); a responder approves to revoke"
}
