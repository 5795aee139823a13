// Package auditlog keeps the audit trail verifiable by someone who does not
// trust the database: it writes Ed25519-signed checkpoints of the chain head
// to a directory outside the store (one file each, never overwritten), checks
// a trail against them — events before a checkpoint must reproduce its head,
// a trail that ends before one has lost events — and exports the trail as
// JSON Lines for a SIEM. A verifier needs only the public key.
package auditlog

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// Checkpoint attests that the audit trail's head was event Seq with hash
// Hash at time At. KeyID is the audit key that sealed that event ("" for an
// unkeyed chain).
type Checkpoint struct {
	Seq   int64     `json:"seq"`
	Hash  string    `json:"hash"`
	At    time.Time `json:"at"`
	KeyID string    `json:"key_id,omitempty"`
	// Sig is the base64 Ed25519 signature of the other fields (payload).
	Sig string `json:"sig"`
	// File is the checkpoint's file name, when read from a directory.
	File string `json:"-"`
}

// payload is what the signature covers: a versioned, line-separated
// encoding of every field (none may hold a newline: seq is a number, hash
// and key id are validated, the time is RFC 3339).
func (c Checkpoint) payload() []byte {
	return []byte("rekey-audit-checkpoint/v1\n" + strconv.FormatInt(c.Seq, 10) + "\n" + c.Hash + "\n" +
		c.At.UTC().Format(time.RFC3339Nano) + "\n" + c.KeyID + "\n")
}

// Sign sets c.Sig.
func (c *Checkpoint) Sign(key ed25519.PrivateKey) {
	c.Sig = base64.StdEncoding.EncodeToString(ed25519.Sign(key, c.payload()))
}

// Verify checks c.Sig against pub.
func (c Checkpoint) Verify(pub ed25519.PublicKey) error {
	sig, err := base64.StdEncoding.DecodeString(c.Sig)
	if err != nil || !ed25519.Verify(pub, c.payload(), sig) {
		return errors.New("bad signature")
	}
	if strings.ContainsAny(c.Hash+c.KeyID, "\n") {
		return errors.New("malformed fields")
	}
	return nil
}

// fileName is a checkpoint's file name: the head's sequence number,
// zero-padded so that names sort in trail order, then the signing time.
func (c Checkpoint) fileName() string {
	return fmt.Sprintf("%020d-%s.json", c.Seq, c.At.UTC().Format("20060102T150405.000000000Z"))
}

// ParsePrivateKey reads an Ed25519 private key: PEM "PRIVATE KEY" (PKCS #8,
// as `openssl genpkey -algorithm ed25519` writes) or a base64 32-byte seed.
// Errors never quote the key.
func ParsePrivateKey(b []byte) (ed25519.PrivateKey, error) {
	if blk, _ := pem.Decode(b); blk != nil {
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, errors.New("PEM block is not a PKCS #8 private key")
		}
		ek, ok := k.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("PEM private key is %T, want Ed25519", k)
		}
		return ek, nil
	}
	seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, errors.New("not a PEM Ed25519 private key nor a base64 32-byte seed")
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// ParsePublicKey reads an Ed25519 public key: PEM "PUBLIC KEY" (as
// MarshalPublicKey and `openssl pkey -pubout` write) or base64 32 bytes.
func ParsePublicKey(b []byte) (ed25519.PublicKey, error) {
	if blk, _ := pem.Decode(b); blk != nil {
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block is not a public key: %w", err)
		}
		ek, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("PEM public key is %T, want Ed25519", k)
		}
		return ek, nil
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, errors.New("not a PEM Ed25519 public key nor base64 32 bytes")
	}
	return ed25519.PublicKey(raw), nil
}

// MarshalPublicKey encodes pub as PEM "PUBLIC KEY".
func MarshalPublicKey(pub ed25519.PublicKey) []byte {
	der, _ := x509.MarshalPKIXPublicKey(pub) // cannot fail for an Ed25519 key
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// ReadDir reads and verifies every checkpoint in dir, in trail order. A
// file that does not parse or whose signature does not verify under pub is
// a problem (someone wrote or edited it without the signing key), named by
// its file; the others are returned.
func ReadDir(dir string, pub ed25519.PublicKey) ([]Checkpoint, []rotator.AuditProblem, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("audit checkpoints: %w", err)
	}
	var (
		cps      []Checkpoint
		problems []rotator.AuditProblem
	)
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".json") {
			continue // temporary files of a checkpoint being written start with "."
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, nil, fmt.Errorf("audit checkpoints: %w", err)
		}
		var c Checkpoint
		seq, _, _ := strings.Cut(name, "-")
		n, _ := strconv.ParseInt(seq, 10, 64)
		if err := json.Unmarshal(b, &c); err != nil {
			problems = append(problems, rotator.AuditProblem{Seq: n, Problem: "checkpoint " + name + " does not parse: " + err.Error()})
			continue
		}
		if err := c.Verify(pub); err != nil {
			problems = append(problems, rotator.AuditProblem{Seq: n, Problem: "checkpoint " + name + ": " + err.Error() + " (written or edited without the signing key, or verified with the wrong public key)"})
			continue
		}
		c.File = name
		cps = append(cps, c)
	}
	sort.SliceStable(cps, func(i, j int) bool {
		if cps[i].Seq != cps[j].Seq {
			return cps[i].Seq < cps[j].Seq
		}
		return cps[i].At.Before(cps[j].At)
	})
	return cps, problems, nil
}

// Check compares a trail (every event, in Seq order, as read from the
// store) with signed checkpoints. The event at a checkpoint's Seq must carry
// the checkpoint's Hash: since each hash covers the one before it, the whole
// trail up to there is then as it was when the checkpoint was signed, even
// if someone recomputed an unkeyed chain after editing it. A trail that ends
// before a checkpoint's Seq has lost events. It reports the first failure
// only (every later checkpoint fails with it): its Seq is the first event
// that may be bad, the one after the last checkpoint that still matches.
func Check(events []rotator.AuditEvent, cps []Checkpoint) []rotator.AuditProblem {
	hashes := make(map[int64]string, len(events))
	var last int64
	for _, e := range events {
		hashes[e.Seq] = e.Hash
		last = max(last, e.Seq)
	}
	var good Checkpoint
	for _, c := range cps {
		if c.Seq == 0 {
			continue // signed while the trail was empty
		}
		signed := fmt.Sprintf("checkpoint %s (signed %s)", c.File, c.At.UTC().Format(time.RFC3339))
		h, ok := hashes[c.Seq]
		switch {
		case c.Seq > last:
			return []rotator.AuditProblem{{Seq: last + 1, Problem: fmt.Sprintf(
				"the trail ends at event %d but %s records the head at event %d: events deleted", last, signed, c.Seq)}}
		case !ok:
			return []rotator.AuditProblem{{Seq: c.Seq, Problem: fmt.Sprintf("event %d is missing but %s records it: deleted", c.Seq, signed)}}
		case h != c.Hash:
			return []rotator.AuditProblem{{Seq: good.Seq + 1, Problem: fmt.Sprintf(
				"events %d..%d do not reproduce %s: one of them was edited, deleted or inserted and the chain recomputed (the last matching checkpoint is at event %d)",
				good.Seq+1, c.Seq, signed, good.Seq)}}
		}
		good = c
	}
	return nil
}
