// Package auth is who may do what through rekey's admin API: canonical
// identities, roles and the actions each allows (optionally scoped to keys
// by name pattern or owner team), and the ways a person proves who they
// are — per-person API tokens (stored as hashes), OIDC bearer tokens checked
// against the provider's discovered keys, client certificates (mTLS) checked
// against a CA bundle, and the bootstrap admin token.
// Every action that changes anything is taken by an authenticated
// Principal, and the actor recorded is the principal's canonical identity,
// never a name from a request (DESIGN.md invariant 7). Only app imports
// this package; adapters never do.
package auth

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/rekeyhq/rekey/internal/reserved"
)

// Role is a named set of actions.
type Role string

// Roles, least privilege first.
const (
	RoleViewer    Role = "viewer"    // read keys, rotations, plan, audit
	RoleOperator  Role = "operator"  // staged rotations, cancel, retry, submit, confirm
	RoleApprover  Role = "approver"  // approve / deny gates
	RoleResponder Role = "responder" // emergency rotation, exposure report, decommission
	RoleAdmin     Role = "admin"     // everything, including API tokens
)

// Roles lists every role, in the order of the table in docs/SECURITY.md.
var Roles = []Role{RoleViewer, RoleOperator, RoleApprover, RoleResponder, RoleAdmin}

// Action is something a principal asks rekey to do.
type Action string

// Actions.
const (
	ActRead         Action = "read"
	ActRotate       Action = "rotate" // a staged rotation (manual, bootstrap)
	ActCancel       Action = "cancel"
	ActRetry        Action = "retry"
	ActSubmit       Action = "submit"
	ActConfirm      Action = "confirm"
	ActDecide       Action = "decide" // approve or deny
	ActEmergency    Action = "emergency"
	ActReport       Action = "report"
	ActDecommission Action = "decommission"
	ActManageTokens Action = "manage-tokens"
)

var roleActions = map[Role][]Action{
	RoleViewer:    {ActRead},
	RoleOperator:  {ActRead, ActRotate, ActCancel, ActRetry, ActSubmit, ActConfirm},
	RoleApprover:  {ActRead, ActDecide},
	RoleResponder: {ActRead, ActEmergency, ActReport, ActDecommission},
	RoleAdmin: {ActRead, ActRotate, ActCancel, ActRetry, ActSubmit, ActConfirm, ActDecide, ActEmergency, ActReport,
		ActDecommission, ActManageTokens},
}

// Actions returns what r allows (nil for an unknown role).
func (r Role) Actions() []Action { return roleActions[r] }

// ParseRole accepts a role name, case-insensitively.
func ParseRole(s string) (Role, error) {
	r := Role(strings.ToLower(strings.TrimSpace(s)))
	if _, ok := roleActions[r]; !ok {
		return "", fmt.Errorf("unknown role %q (one of viewer, operator, approver, responder, admin)", s)
	}
	return r, nil
}

// Grant is one role, optionally scoped: to keys whose name matches Keys
// (path.Match syntax, e.g. "payments-*"), and/or to keys whose owner team
// is Team. An unscoped grant covers every key and the actions that concern
// no key (token management).
type Grant struct {
	Role Role
	Keys string
	Team string
}

// Scoped reports whether g is limited to some keys.
func (g Grant) Scoped() bool { return g.Keys != "" || g.Team != "" }

// ValidPattern checks a key name pattern.
func ValidPattern(p string) error {
	if _, err := path.Match(p, ""); err != nil {
		return fmt.Errorf("key pattern %q: %w", p, err)
	}
	return nil
}

func (g Grant) covers(k Key) bool {
	if k.Name == "" {
		return !g.Scoped()
	}
	if g.Keys != "" {
		if ok, _ := path.Match(g.Keys, k.Name); !ok {
			return false
		}
	}
	return g.Team == "" || strings.EqualFold(g.Team, k.Team)
}

// Key is what a scope is checked against; the zero Key is "no key in
// particular" (token management), which only unscoped grants cover.
type Key struct {
	Name string
	Team string
}

// Principal is an authenticated person (or the bootstrap admin).
type Principal struct {
	// ID is the canonical identity, recorded as the actor.
	ID string
	// Via names how it authenticated: token, oidc, bootstrap, mtls.
	Via    string
	Grants []Grant
	// TokenID is the API token used, if any, and TokenCreator who
	// created it: they saw the token once, so what it does is also theirs
	// for the self-approval and two-person rules.
	TokenID      string
	TokenCreator string
	// TokenChain is the people behind the token (TokenRecord.Chain, or
	// its creator for a token older than chains): whoever created a token
	// in the chain could have kept every token created from it. Nil for
	// OIDC, the bootstrap token and break-glass.
	TokenChain []string
	// Cert is the verified client certificate the request came with, if
	// any (also when a bearer token of the same person decided the
	// principal): the audit trail records it.
	Cert *CertID
}

// Behind is the people behind what p does: p itself and its token's
// chain. It is the chain of a token p creates.
func (p *Principal) Behind() []string {
	if p == nil {
		return nil
	}
	return People(append([]string{p.ID}, p.TokenChain...)...)
}

// Can reports whether p may take action a on key k.
func (p *Principal) Can(a Action, k Key) bool {
	if p == nil {
		return false
	}
	for _, g := range p.Grants {
		if slices.Contains(roleActions[g.Role], a) && g.covers(k) {
			return true
		}
	}
	return false
}

// RoleNames lists p's roles, with their scopes, for whoami and errors.
func (p *Principal) RoleNames() []string {
	out := []string{}
	for _, g := range p.Grants {
		s := string(g.Role)
		if g.Keys != "" {
			s += " keys=" + g.Keys
		}
		if g.Team != "" {
			s += " team=" + g.Team
		}
		if !slices.Contains(out, s) { // two entries granting the same role show once
			out = append(out, s)
		}
	}
	return out
}

// Canonical is the canonical form of an identity as people and channels
// spell it: trimmed and lower-cased, so that "Alice@Example.com " and
// "alice@example.com" are one person. Directory adds explicit aliases.
func Canonical(id string) string { return strings.ToLower(strings.TrimSpace(id)) }

// Directory maps the names people are known by to one canonical identity.
type Directory struct {
	aliases map[string]string
}

// NewDirectory builds a directory from alias → identity pairs (both
// canonicalised).
func NewDirectory(aliases map[string]string) *Directory {
	d := &Directory{aliases: make(map[string]string, len(aliases))}
	for a, id := range aliases {
		d.aliases[Canonical(a)] = Canonical(id)
	}
	return d
}

// Canonical returns the canonical identity of id: its alias target if it
// has one, else Canonical(id).
func (d *Directory) Canonical(id string) string {
	c := Canonical(id)
	if d != nil {
		if t, ok := d.aliases[c]; ok {
			return t
		}
	}
	return c
}

// Names returns id's canonical identity followed by every alias that
// resolves to it (sorted): the names a record about the person may be
// kept under.
func (d *Directory) Names(id string) []string {
	c := d.Canonical(id)
	out := []string{c}
	if d != nil {
		for a, t := range d.aliases {
			if t == c && a != c {
				out = append(out, a)
			}
		}
	}
	slices.Sort(out[1:])
	return out
}

// ReservedIdentities are the names rekey records for its own actions: the
// engine ("rekey"), the scheduler, and the bootstrap token ("admin").
var ReservedIdentities = reserved.Names

// Reserved refuses an identity no person may hold (internal/reserved): one
// of ReservedIdentities, anything in the "kind:name" form rekey uses for
// channels and sources (break-glass:…, exposure:…, departure:…, github:…,
// slack:…), or what reads as either in an audit trail (invisible or
// compatibility characters, a confusable skeleton). A token or an OIDC
// identity with such a name would make the audit trail attribute a
// person's actions to rekey itself.
func Reserved(id string) error { return reserved.Check(id) }
