package auth

import (
	"context"
	"fmt"
)

// Left is what Authenticator.Departed reports about a person who left.
type Left struct {
	// Reason says who left, when and through which webhook
	// ("carol@example.com left on 2026-12-05 03:01 UTC (departure via hr)").
	Reason string
	// By is the principal that reported the departure
	// (departure:<webhook>): a token revoked because of it is revoked by
	// them.
	By string
}

// DepartedError refuses a credential of a person reported as having left,
// whatever it is (API token, OIDC token, client certificate). It wraps
// ErrUnauthenticated: the answer is a 401, with Error as its short reason.
type DepartedError struct {
	Left Left
	// TokenID is the API token presented, if any, and Revoked whether it
	// was revoked on the spot.
	TokenID string
	Revoked bool
}

func (e *DepartedError) Error() string {
	s := e.Left.Reason + ": their credentials no longer authenticate"
	if e.Revoked {
		s += fmt.Sprintf(" (token %s is revoked)", e.TokenID)
	}
	return s
}

// Unwrap makes errors.Is(err, ErrUnauthenticated) hold.
func (e *DepartedError) Unwrap() error { return ErrUnauthenticated }

// refuseDeparted refuses p when Departed reports its person as having
// left; an API token of theirs is revoked first (RevokeDeparted), so that
// it stays refused even if the departure record were lost. The bootstrap
// token names nobody and is not checked.
func (a *Authenticator) refuseDeparted(ctx context.Context, p *Principal) (*Principal, error) {
	if a.Departed == nil || p == nil || p.Via == "bootstrap" {
		return p, nil
	}
	left, err := a.Departed(ctx, p.ID)
	if err != nil {
		return nil, fmt.Errorf("check whether %s left: %w", p.ID, err)
	}
	if left == nil {
		return p, nil
	}
	de := &DepartedError{Left: *left, TokenID: p.TokenID}
	if p.TokenID != "" && a.RevokeDeparted != nil {
		if err := a.RevokeDeparted(ctx, p.TokenID, p.ID, *left); err != nil {
			return nil, fmt.Errorf("revoke token %s of %s, who left: %w", p.TokenID, p.ID, err)
		}
		de.Revoked = true
	}
	return nil, de
}
