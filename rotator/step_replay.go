package rotator

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// idempotencyWindow is how long the key's issuer replays a mint answer for
// the same idempotency key; zero when it does not honour keys.
func (s *step) idempotencyWindow() time.Duration {
	if _, human := s.k.Issuer.(HumanIssuer); human {
		return 0
	}
	if im, ok := s.k.Issuer.(IdempotentMinter); ok {
		return im.IdempotencyWindow()
	}
	return 0
}

// replayMint resumes a mint intent found unminted at an issuer that
// honours idempotency keys: it asks again with the intent's key, so that a
// credential the earlier attempt created (its answer lost to a crash or a
// reset connection) comes back — id and secret — instead of a second
// credential of the same name being created and the first revoked.
//
// The issuer keeps a key only for its window: one that lapsed while the
// daemon was down lets the issuer create a second credential. Whatever the
// issuer lists under the name besides the credential it returns is then an
// orphan, revoked once the mint is recorded (afterReplay), each orphan
// recorded before its revoke. An issuer that cannot list is warned about
// when the intent is older than the window, as for any resumed mint.
func (s *step) replayMint(ctx context.Context, c *Credential) outcome {
	req := s.mintRequest(c)
	var before []string
	if f, ok := s.k.Issuer.(Finder); ok {
		ids, err := f.FindByName(ctx, s.r.Key, c.Name)
		if err != nil {
			return failed(fmt.Errorf("issuer %s: look for credentials named %s: %w", s.k.IssuerName, c.Name, err))
		}
		before = ids
	}
	o := sideEffect("", func(ctx context.Context) outcome {
		m, err := s.mintAt(ctx, req)
		o := s.mintAnswered(ctx, c, m, err, "mint "+c.Name+" again with its idempotency key")
		if err != nil || o.kind != outNext {
			return o
		}
		for _, id := range before {
			if id != m.ID {
				// Recorded with the mint, before the revoke: the
				// credential that stays and the orphan that goes.
				return s.reap(c, id).with(o.creds...).auditing(s.auditEvent("minted", o.detail))
			}
		}
		return o
	})
	if s.r.Attempts > 1 {
		return o // said on the first resumed attempt; step.retry tells the rest
	}
	o = o.recording("mint.resumed", map[string]string{"name": c.Name, "idempotency_key": req.IdempotencyKey})
	if _, finder := s.k.Issuer.(Finder); !finder && !s.now().Before(c.CreatedAt.Add(s.idempotencyWindow())) {
		o = o.notifying(s.event(EventOrphan, SeverityWarning, fmt.Sprintf(
			"%s: an earlier attempt to mint %s may have created it before it was recorded, longer ago than issuer %s keeps idempotency keys (%s), and the issuer cannot list credentials: look for %s at the issuer and revoke every copy but the one rekey delivers",
			s.r.Key, c.Name, s.k.IssuerName, s.idempotencyWindow(), c.Name), map[string]string{"name": c.Name}))
	}
	return o
}

// afterReplay leaves the minting phase once the new credential is
// recorded. After a replayed mint, the issuer may still list another
// credential under the name (its key lapsed, so it created a second one):
// each is reaped before the rotation moves on — also when a crash came
// between the record of the mint and the revoke.
func (s *step) afterReplay(ctx context.Context, c *Credential) outcome {
	f, ok := s.k.Issuer.(Finder)
	if !ok || s.idempotencyWindow() == 0 {
		return advance("minted", nil)
	}
	ids, err := f.FindByName(ctx, s.r.Key, c.Name)
	if err != nil {
		return failed(fmt.Errorf("issuer %s: look for orphans named %s: %w", s.k.IssuerName, c.Name, err))
	}
	if i := slices.IndexFunc(ids, func(id string) bool { return id != c.IssuerID }); i >= 0 {
		return s.reap(c, ids[i])
	}
	return advance("minted", nil)
}
