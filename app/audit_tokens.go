package app

import (
	"context"
	"encoding/json"
	"time"

	"github.com/rekeyhq/rekey/auth"
	"github.com/rekeyhq/rekey/rotator"
)

// AuditTokenCreated records who created a per-person API token for whom,
// with which role and the people behind it (never the token): who can act
// is part of the trail.
func (d *Daemon) AuditTokenCreated(ctx context.Context, rec auth.TokenRecord, by string) error {
	chain, err := json.Marshal(auth.ChainOf(rec))
	if err != nil {
		return err
	}
	return d.auditToken(ctx, "token.created", by, map[string]string{
		"token_id": rec.ID, "user": rec.User, "role": string(rec.Grant.Role), "keys": rec.Grant.Keys, "team": rec.Grant.Team,
		"created_by_chain": string(chain),
	})
}

// AuditTokenRevoked records a token's revocation.
func (d *Daemon) AuditTokenRevoked(ctx context.Context, id, by string) error {
	return d.auditToken(ctx, "token.revoked", by, map[string]string{"token_id": id})
}

func (d *Daemon) auditToken(ctx context.Context, action, by string, detail map[string]string) error {
	return d.Store.Save(ctx, rotator.Commit{Audit: []rotator.AuditEvent{{At: time.Now(), Actor: by, Action: action, Detail: detail}}})
}
