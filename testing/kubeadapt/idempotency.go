package kubeadapt

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// DefaultIdempotencyTTL is how long the create call remembers an
// Idempotency-Key when Options.IdempotencyTTL is zero (Stripe's window).
const DefaultIdempotencyTTL = 24 * time.Hour

// IdempotencyHeader is the request header of draft-ietf-httpapi-idempotency-key-header.
const IdempotencyHeader = "Idempotency-Key"

// idemEntry is what the create call remembers of one Idempotency-Key: the
// payload it came with and, once the first request finished, its answer —
// secret included, since a replay must hand back the same key.
type idemEntry struct {
	fingerprint [sha256.Size]byte
	at          time.Time // when the first request came
	done        bool      // false: the first request is still in flight
	status      int
	header      http.Header
	body        []byte
}

// IdempotencyStats counts what the create call did with Idempotency-Keys.
type IdempotencyStats struct {
	Replays    int // answers replayed from a key's first request
	InFlight   int // 409: the key's first request had not finished
	Mismatches int // 422: the key came with another payload
	Expired    int // keys forgotten after the window
}

// Idempotency returns the counts so far.
func (s *Server) Idempotency() IdempotencyStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.idemStats
}

// idempotent serves POST /admin/v1/api-keys under an Idempotency-Key, as
// draft-ietf-httpapi-idempotency-key-header says: the first request with a
// key is processed and its answer stored; a later request with the same key
// and the same payload (SHA-256 of the body) gets the stored answer again,
// marked Idempotent-Replayed: true; the same key with another payload gets
// 422; a request whose key's first request is still in flight gets 409.
// Keys expire IdempotencyTTL after their first request. A client that
// cannot set the header may send the key as "idempotency_key" in the JSON
// body instead (the header wins when both come); a request with neither is
// served as before. Keys are scoped to the admin principal (there is one);
// a malformed key — not an sf-string, several header fields, a body key
// that is not 1 to 255 printable ASCII characters — is 400.
func (s *Server) idempotent(w http.ResponseWriter, r *http.Request, create func(http.ResponseWriter, *http.Request)) {
	body, err := readBody(w, r)
	if err != nil {
		writeDetail(w, http.StatusBadRequest, err.Error())
		return
	}
	r.Body = readCloser{bytes.NewReader(body)}
	vals := r.Header.Values(IdempotencyHeader)
	var key string
	switch {
	case len(vals) > 0:
		k, ok := parseSFString(vals[0])
		if len(vals) > 1 || !ok || k == "" || len(k) > 255 {
			writeDetail(w, http.StatusBadRequest, "Idempotency-Key must be one quoted string (RFC 8941 sf-string) of 1 to 255 printable ASCII characters")
			return
		}
		key = k
	default:
		k, present := bodyKey(body)
		if !present {
			create(w, r)
			return
		}
		if !printableKey(k) {
			writeDetail(w, http.StatusBadRequest, "idempotency_key must be a string of 1 to 255 printable ASCII characters")
			return
		}
		key = k
	}
	fp := sha256.Sum256(body)
	now := s.now()

	s.mu.Lock()
	s.expireKeys(now)
	if e := s.idem[key]; e != nil {
		switch {
		case e.fingerprint != fp:
			s.idemStats.Mismatches++
			s.mu.Unlock()
			writeDetail(w, http.StatusUnprocessableEntity, "Idempotency-Key is already used with another payload")
		case !e.done:
			s.idemStats.InFlight++
			s.mu.Unlock()
			writeDetail(w, http.StatusConflict, "a request with this Idempotency-Key is still being processed")
		default:
			s.idemStats.Replays++
			status, header, stored := e.status, e.header.Clone(), bytes.Clone(e.body)
			s.mu.Unlock()
			for k, v := range header {
				w.Header()[k] = v
			}
			w.Header().Set("Idempotent-Replayed", "true")
			w.WriteHeader(status)
			_, _ = w.Write(stored)
		}
		return
	}
	e := &idemEntry{fingerprint: fp, at: now}
	s.idem[key] = e
	s.mu.Unlock()

	rec := &capture{header: http.Header{}}
	create(rec, r)

	s.mu.Lock()
	if rec.status == http.StatusBadRequest {
		// The payload was never processed (malformed JSON): nothing to
		// replay, the key may be used again with a corrected request.
		delete(s.idem, key)
	} else {
		e.done, e.status, e.header, e.body = true, rec.status, rec.header, rec.body.Bytes()
	}
	s.mu.Unlock()
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.status)
	_, _ = w.Write(rec.body.Bytes())
}

// expireKeys forgets keys older than the window (the caller holds s.mu).
func (s *Server) expireKeys(now time.Time) {
	for k, e := range s.idem {
		if e.done && !now.Before(e.at.Add(s.idemTTL)) {
			delete(s.idem, k)
			s.idemStats.Expired++
		}
	}
}

// bodyKey reads the "idempotency_key" member of a JSON body; present is
// false when the body is not a JSON object or has no such string member
// (a malformed body is then refused by the create call itself).
func bodyKey(body []byte) (key string, present bool) {
	var doc struct {
		Key *string `json:"idempotency_key"`
	}
	if json.Unmarshal(body, &doc) != nil || doc.Key == nil {
		return "", false
	}
	return *doc.Key, true
}

// printableKey: 1 to 255 printable ASCII characters.
func printableKey(k string) bool {
	if k == "" || len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// parseSFString parses an RFC 8941 String: DQUOTE, printable ASCII with
// \" and \\ escaped, DQUOTE.
func parseSFString(v string) (string, bool) {
	v = strings.TrimSpace(v)
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", false
	}
	var b strings.Builder
	for i := 1; i < len(v)-1; i++ {
		c := v[i]
		switch {
		case c == '\\':
			i++
			if i >= len(v)-1 || (v[i] != '"' && v[i] != '\\') {
				return "", false
			}
			b.WriteByte(v[i])
		case c == '"' || c < 0x20 || c > 0x7e:
			return "", false
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

// readBody reads a request body of at most 1 MiB.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, 1<<20)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// capture records an answer so that it can be stored and replayed.
type capture struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (c *capture) Header() http.Header { return c.header }
func (c *capture) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
}
func (c *capture) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return c.body.Write(b)
}
