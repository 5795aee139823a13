package github

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rekeyhq/rekey/rotator"
)

// Errors of keyRing.lookup.
var (
	// errUnknownKey: the current key list has no such identifier.
	errUnknownKey = errors.New("unknown public key identifier")
	// errKeysUnavailable: the key list could not be fetched.
	errKeysUnavailable = errors.New("GitHub's public key list is unavailable")
)

// maxKeyList bounds the key list document.
const maxKeyList = 1 << 20

// keyRing caches GitHub's secret scanning public keys by identifier. It
// fetches the list lazily, again when a request names an unknown key or
// the list is older than maxAge — but never more than once per interval,
// and one fetch at a time, shared by every waiting request.
type keyRing struct {
	url      string
	token    rotator.Secret
	client   *http.Client
	interval time.Duration
	maxAge   time.Duration
	now      func() time.Time
	log      *slog.Logger

	mu        sync.Mutex
	keys      map[string]*ecdsa.PublicKey
	fetchedAt time.Time     // last successful fetch
	triedAt   time.Time     // last attempt
	lastErr   error         // of the last attempt
	inflight  chan struct{} // closed when the running fetch ends
}

// lookup returns the public key named id.
func (k *keyRing) lookup(ctx context.Context, id string) (*ecdsa.PublicKey, error) {
	for {
		k.mu.Lock()
		now := k.now()
		pub, ok := k.keys[id]
		if ok && !k.fetchedAt.IsZero() && now.Sub(k.fetchedAt) < k.maxAge {
			k.mu.Unlock()
			return pub, nil
		}
		if ch := k.inflight; ch != nil {
			k.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, errKeysUnavailable
			}
		}
		if !k.triedAt.IsZero() && now.Sub(k.triedAt) < k.interval {
			// No fetch allowed yet: answer from what we have.
			lastErr := k.lastErr
			k.mu.Unlock()
			switch {
			case ok:
				return pub, nil // stale, but GitHub has not been reachable to say otherwise
			case lastErr != nil:
				return nil, errKeysUnavailable
			}
			return nil, errUnknownKey
		}
		ch := make(chan struct{})
		k.inflight, k.triedAt = ch, now
		k.mu.Unlock()

		keys, err := k.fetch(ctx)

		k.mu.Lock()
		k.lastErr = err
		if err == nil {
			k.keys, k.fetchedAt = keys, k.now()
		}
		k.inflight = nil
		close(ch)
		k.mu.Unlock()
		if err != nil {
			k.log.ErrorContext(ctx, "could not fetch GitHub's secret scanning public keys", "url", k.url, "err", err)
		} else {
			k.log.InfoContext(ctx, "fetched GitHub's secret scanning public keys", "keys", len(keys))
		}
	}
}

// fetch reads and parses the key list. It runs detached from the request
// that triggered it, since other requests wait for it too.
func (k *keyRing) fetch(ctx context.Context) (map[string]*ecdsa.PublicKey, error) {
	req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodGet, k.url, nil)
	if err != nil {
		return nil, fmt.Errorf("github: key list: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if !k.token.IsZero() {
		req.Header.Set("Authorization", "Bearer "+k.token.Reveal())
	}
	body, status, err := do(k.client, req, maxKeyList)
	if err != nil {
		return nil, fmt.Errorf("github: GET key list: %w", err)
	}
	if status != http.StatusOK {
		return nil, rotator.HTTPStatusError("github: GET key list", status, "")
	}
	keys, skipped, err := parseKeyList(body)
	for _, s := range skipped {
		k.log.WarnContext(ctx, "skipped a public key GitHub listed", "err", s)
	}
	return keys, err
}

// keyList is the document at keys_url.
type keyList struct {
	PublicKeys []struct {
		KeyIdentifier string `json:"key_identifier"`
		Key           string `json:"key"`
		IsCurrent     bool   `json:"is_current"`
	} `json:"public_keys"`
}

// parseKeyList parses the key list, keeping the ECDSA P-256 keys (current
// or not: GitHub may still sign with a key it is phasing out). skipped
// explains the entries it left out; an error means no usable key.
func parseKeyList(b []byte) (keys map[string]*ecdsa.PublicKey, skipped []error, err error) {
	var doc keyList
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, nil, errors.New("github: key list: malformed JSON")
	}
	keys = map[string]*ecdsa.PublicKey{}
	for i, e := range doc.PublicKeys {
		pub, err := parsePublicKey(e.Key)
		switch {
		case !validKeyID(e.KeyIdentifier):
			skipped = append(skipped, fmt.Errorf("public_keys[%d]: key_identifier must be 1 to 256 visible ASCII characters", i))
		case err != nil:
			skipped = append(skipped, fmt.Errorf("public_keys[%d] (%s): %w", i, e.KeyIdentifier, err))
		default:
			keys[e.KeyIdentifier] = pub
		}
	}
	if len(keys) == 0 {
		return nil, skipped, errors.New("github: key list has no usable ECDSA P-256 key")
	}
	return keys, skipped, nil
}

func parsePublicKey(s string) (*ecdsa.PublicKey, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("not a PEM PUBLIC KEY")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, errors.New("not a PKIX public key")
	}
	pub, ok := k.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, errors.New("not an ECDSA P-256 key")
	}
	return pub, nil
}

func validKeyID(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// verifySignature checks a Github-Public-Key-Signature header: the base64
// of an ASN.1 DER ECDSA signature over SHA-256 of the raw body.
func verifySignature(pub *ecdsa.PublicKey, body []byte, header string) bool {
	header = strings.TrimSpace(header)
	if header == "" || len(header) > 512 {
		return false
	}
	sig, err := base64.StdEncoding.DecodeString(header)
	if err != nil {
		return false
	}
	digest := sha256.Sum256(body)
	return ecdsa.VerifyASN1(pub, digest[:], sig)
}
