package rotator_test

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// byHandIssuer plays a dashboard-only issuer over the crash world's
// ledger: a person mints and revokes there; rekey only takes the secret
// (Accept) and the word that a key is revoked (CheckRevoked asks the
// ledger, as a probe would).
type byHandIssuer struct {
	*verifyingIssuer
	mu  sync.Mutex
	ids map[string]string // secret → ledger id, as the person minted it
}

func (b *byHandIssuer) Mint(context.Context, rotator.MintRequest) (rotator.Minted, error) {
	return rotator.Minted{}, rotator.Permanent(errMintByHand)
}

func (b *byHandIssuer) Revoke(context.Context, rotator.CredentialRef) error {
	return rotator.Permanent(errMintByHand)
}

func (b *byHandIssuer) MintInstructions(req rotator.MintRequest) string {
	return "mint " + req.Name + " then rekey submit " + req.RotationID
}

func (b *byHandIssuer) RevokeInstructions(ref rotator.CredentialRef) string {
	return "revoke " + ref.Name + " then rekey confirm " + ref.RotationID
}

func (b *byHandIssuer) Accept(_ context.Context, _ rotator.MintRequest, s rotator.Secret) (rotator.Minted, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	id, ok := b.ids[s.Reveal()]
	if !ok {
		return rotator.Minted{}, rotator.Permanent(errUnknownSecret)
	}
	return rotator.Minted{ID: id, Secret: s}, nil
}

// mintAtDashboard is the person minting name in the dashboard.
func (b *byHandIssuer) mintAtDashboard(key, name string) rotator.Secret {
	m, err := b.issuer.Mint(context.Background(), rotator.MintRequest{Key: key, Name: name})
	if err != nil {
		panic(err)
	}
	b.mu.Lock()
	b.ids[m.Secret.Reveal()] = m.ID
	b.mu.Unlock()
	return m.Secret
}

type byHandError string

func (e byHandError) Error() string { return string(e) }

const (
	errMintByHand    byHandError = "a person mints and revokes this key"
	errUnknownSecret byHandError = "no such key in the dashboard"
)

// byHand makes the world's key one that only a person can mint or revoke.
func (w *crashWorld) byHand() {
	w.key.Issuer = &byHandIssuer{verifyingIssuer: w.iss, ids: map[string]string{}}
	w.restart("")
}

// byHandPerson acts as the on-call engineer of an emergency by hand: revoke
// the leaked key and confirm (first, or once the replacement is live), mint
// the replacement and submit it, and revoke any submitted key rekey says it
// lost (a crash before every sink held it).
func byHandPerson(confirmFirst bool) func(*crashWorld, *rotator.Rotation) {
	return func(w *crashWorld, r *rotator.Rotation) {
		bh := w.key.Issuer.(*byHandIssuer)
		creds, err := w.store.Credentials(w.ctx, "api")
		if err != nil {
			w.t.Fatal(err)
		}
		var leaked *rotator.Credential
		for _, c := range creds {
			if c.State == rotator.CredRevoked && c.IssuerID != "" && !w.iss.isRevoked(c.IssuerID) {
				_ = w.iss.issuer.Revoke(w.ctx, rotator.CredentialRef{ID: c.IssuerID}) // the lost one, by hand
			}
			if c.Generation == r.TargetGeneration {
				leaked = c
			}
		}
		if r.Phase.Terminal() {
			return
		}
		confirm := func() {
			if leaked.State != rotator.CredRevoked {
				_ = w.iss.issuer.Revoke(w.ctx, rotator.CredentialRef{ID: leaked.IssuerID})
				if _, err := w.engine.Confirm(w.ctx, r.ID, "oncall@example.com"); err != nil {
					w.t.Fatalf("confirm: %v", err)
				}
			}
		}
		switch {
		case confirmFirst && leaked.State != rotator.CredRevoked && r.Phase == rotator.PhaseMinting && r.Hold == rotator.HoldSecret:
			confirm()
		case r.Phase == rotator.PhaseMinting && r.Hold == rotator.HoldSecret:
			sec := bh.mintAtDashboard("api", rotator.CredentialName("api", r.NewGeneration))
			w.submit(r.ID, sec)
		case r.Hold == rotator.HoldConfirm:
			confirm()
		}
	}
}

// submit runs `rekey submit`, which stages at once: a failpoint may kill
// the process inside it.
func (w *crashWorld) submit(id string, sec rotator.Secret) {
	done := make(chan error, 1)
	go func() { _, err := w.engine.Submit(w.ctx, id, "oncall@example.com", sec); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			w.t.Fatalf("submit: %v", err)
		}
	case <-w.killed:
		w.diedInEach = true
	case <-time.After(time.Minute):
		w.t.Fatal("submit did not return")
	}
}

// CheckRevoked asks the ledger, as a probe with the old value would.
func (b *byHandIssuer) CheckRevoked(_ context.Context, _ string, old rotator.Secret, _ map[string]any) (bool, error) {
	b.mu.Lock()
	id, ok := b.ids[old.Reveal()]
	b.mu.Unlock()
	if !ok {
		for i, s := range b.allSecrets() { // minted by the issuer itself (id-N)
			if s == old.Reveal() {
				id, ok = "id-"+strconv.Itoa(i+1), true
			}
		}
	}
	if !ok {
		return false, byHandError("the probe got no answer")
	}
	return b.isRevoked(id), nil
}

// ReadValue gives back a value from any slot (ValueReader).
func (s readerSink) ReadValue(_ context.Context, t rotator.Target, fp string) (rotator.Secret, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.slot(t)
	for _, x := range []string{v.pend, v.cur, v.prev} {
		if x != "" && rotator.Fingerprint(x) == fp {
			return rotator.NewSecret(x), nil
		}
	}
	return rotator.Secret{}, rotator.ErrNotFound
}
