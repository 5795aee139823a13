package rotator

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// The people behind a request or a decision are the person who acts and
// everyone who could hold the credential they act with: for an API token,
// its creator, the creator of the token that creator used, and so on (the
// token's chain). Whoever created a token saw it once.
//
// Two sides (a request and an approval, or two approvals of one gate) are
// two people unless someone who acts on one side is behind the other: the
// requester behind the approval's token chain, the approver behind the
// request's, or one approver behind the other's. A person who is only a
// token's creator on both sides (the admin who created everyone's tokens)
// does not make them one: the token rules trust whoever issues tokens not
// to keep two of them (docs/SECURITY.md).

// peopleOf deduplicates canonical identities, in order, without empties.
func peopleOf(ids ...string) []string {
	var out []string
	for _, id := range ids {
		if c := CanonicalIdentity(id); c != "" && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// peopleText is how people are recorded in an audit detail: a JSON array
// (identities are printable text, which may hold commas).
func peopleText(people []string) string {
	b, err := json.Marshal(people)
	if err != nil { // a []string always marshals
		return ""
	}
	return string(b)
}

// parsePeople reads peopleText; "" or an unreadable value is nobody.
func parsePeople(s string) []string {
	var out []string
	if s == "" || json.Unmarshal([]byte(s), &out) != nil {
		return nil
	}
	return peopleOf(out...)
}

// side is who acts on one side of a check and who is behind them.
type side struct {
	actor  string   // canonical
	behind []string // actor first, then their token's chain
}

func sideOf(actor string, chain ...string) side {
	return side{actor: CanonicalIdentity(actor), behind: peopleOf(append([]string{actor}, chain...)...)}
}

// shared returns a person who makes a and b one person (the actor of one
// is behind the other), or "".
func shared(a, b side) string {
	switch {
	case slices.Contains(b.behind, a.actor):
		return a.actor
	case slices.Contains(a.behind, b.actor):
		return b.actor
	}
	return ""
}

func (s side) String() string { return strings.Join(s.behind, ", ") }

// detailRequestBehind and detailTokenChain are the audit detail keys of the people behind a request
// (rotation.created) or a decision's token (decision.*).
const (
	detailRequestBehind = "people_behind"
	detailTokenChain    = "token_chain"
)

// requestSide is who requested r and who is behind them, from the
// rotation.created audit event; a rotation created before the event
// recorded it is its actor's alone.
func (e *Engine) requestSide(ctx context.Context, r *Rotation) (side, error) {
	evs, err := e.store.Audit(ctx, AuditFilter{RotationID: r.ID})
	if err != nil {
		return side{}, fmt.Errorf("load the request: %w", err)
	}
	for _, ev := range evs {
		if ev.Action == "rotation.created" {
			return sideOf(r.Actor, parsePeople(ev.Detail[detailRequestBehind])...), nil
		}
	}
	return sideOf(r.Actor), nil
}

// decisionSide is who made an earlier decision, from its audit event.
func decisionSide(ev AuditEvent) side {
	chain := parsePeople(ev.Detail[detailTokenChain])
	if len(chain) == 0 {
		chain = peopleOf(ev.Detail["token_created_by"])
	}
	return sideOf(ev.Actor, chain...)
}
