package random

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// The ledger is an append-only log of JSON lines: a header line, then one
// record per mint and per revocation, each written with one write and
// synced before Mint or Revoke returns. Appending costs the same whatever
// the ledger's length (rewriting the whole file on every call cost ~28 ms
// per revoke at 10,000 entries).
//
//	{"version":2}
//	{"op":"mint","id":"rnd_…","key":"api","name":"api-v1","fingerprint":"…","created_at":"…"}
//	{"op":"revoke","id":"rnd_…","revoked_at":"…"}
//
// A crash in the middle of an append leaves a torn last line (a record with
// no newline, or garbage the file system kept): it is dropped when the
// ledger is loaded — the call that wrote it never returned, so its caller
// retries — and reported. A bad line anywhere else is corruption, and the
// issuer refuses to start rather than forget revocations. A version-1 ledger
// (one JSON document, rewritten on every call) is converted once.
const ledgerVersion = 2

// legacyLedgerVersion is the single-document format of earlier releases.
const legacyLedgerVersion = 1

// entry is one minted credential as the ledger records it. It never holds
// the secret: only its SHA-256 fingerprint.
type entry struct {
	ID          string    `json:"id"`
	Key         string    `json:"key"`
	Name        string    `json:"name"`
	Fingerprint string    `json:"fingerprint"`
	CreatedAt   time.Time `json:"created_at"`
	RevokedAt   time.Time `json:"revoked_at,omitzero"`
}

func (e *entry) revoked() bool { return !e.RevokedAt.IsZero() }

// record is one line of the ledger after the header.
type record struct {
	Op          string    `json:"op"` // "mint" or "revoke"
	ID          string    `json:"id"`
	Key         string    `json:"key,omitempty"`
	Name        string    `json:"name,omitempty"`
	Fingerprint string    `json:"fingerprint,omitempty"`
	CreatedAt   time.Time `json:"created_at,omitzero"`
	RevokedAt   time.Time `json:"revoked_at,omitzero"`
}

const (
	opMint   = "mint"
	opRevoke = "revoke"
)

type header struct {
	Version int `json:"version"`
}

// legacyFile is the on-disk form of a version-1 ledger.
type legacyFile struct {
	Version     int      `json:"version"`
	Credentials []*entry `json:"credentials"`
}

// loaded is what loadLedger found.
type loaded struct {
	entries []*entry // in mint order, revocations applied
	// torn is the size of a torn last line that was dropped (0: none).
	torn int
	// converted: a version-1 ledger was rewritten as a log.
	converted bool
}

// loadLedger reads path (a missing file is an empty ledger), drops a torn
// last line from the file and converts a version-1 ledger.
func loadLedger(path string) (loaded, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return loaded{}, nil
	}
	if err != nil {
		return loaded{}, fmt.Errorf("read ledger %s: %w", path, err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return loaded{}, nil
	}
	first, _, _ := bytes.Cut(b, []byte("\n"))
	var h header
	if json.Unmarshal(first, &h) != nil || h.Version == legacyLedgerVersion {
		return loadLegacy(path, b)
	}
	if h.Version != ledgerVersion {
		return loaded{}, fmt.Errorf("ledger %s: unsupported version %d (want %d)", path, h.Version, ledgerVersion)
	}
	entries, good, err := replay(path, b)
	if err != nil {
		return loaded{}, err
	}
	l := loaded{entries: entries}
	if good < len(b) {
		l.torn = len(b) - good
		if err := truncate(path, int64(good)); err != nil {
			return loaded{}, err
		}
	}
	return l, nil
}

// replay applies the records of b after its header. It returns the entries
// and the length of the well-formed prefix of b (a torn last line excluded).
func replay(path string, b []byte) ([]*entry, int, error) {
	var entries []*entry
	byID := map[string]*entry{}
	off := bytes.IndexByte(b, '\n') + 1
	for lineNo := 2; off < len(b); lineNo++ {
		end := bytes.IndexByte(b[off:], '\n')
		last := end < 0 || off+end+1 == len(b)
		if end < 0 {
			return entries, off, nil // torn: the write never completed
		}
		line := b[off : off+end]
		var r record
		if err := json.Unmarshal(line, &r); err != nil || !r.valid() {
			if last {
				return entries, off, nil // torn: garbage the crash left
			}
			return nil, 0, fmt.Errorf("ledger %s: line %d is not a record (the file is damaged; restore it from a backup): %q", path, lineNo, clip(line))
		}
		switch r.Op {
		case opMint:
			if byID[r.ID] != nil {
				return nil, 0, fmt.Errorf("ledger %s: line %d mints %s a second time", path, lineNo, r.ID)
			}
			e := &entry{ID: r.ID, Key: r.Key, Name: r.Name, Fingerprint: r.Fingerprint, CreatedAt: r.CreatedAt}
			entries = append(entries, e)
			byID[e.ID] = e
		case opRevoke:
			e := byID[r.ID]
			if e == nil {
				return nil, 0, fmt.Errorf("ledger %s: line %d revokes %s, which it never minted", path, lineNo, r.ID)
			}
			if !e.revoked() {
				e.RevokedAt = r.RevokedAt
			}
		}
		off += end + 1
	}
	return entries, off, nil
}

func (r record) valid() bool {
	switch r.Op {
	case opMint:
		return r.ID != "" && r.Key != ""
	case opRevoke:
		return r.ID != "" && !r.RevokedAt.IsZero()
	}
	return false
}

func clip(b []byte) []byte {
	if len(b) > 80 {
		return b[:80]
	}
	return b
}

// loadLegacy reads a version-1 ledger and rewrites it as a log.
func loadLegacy(path string, b []byte) (loaded, error) {
	var f legacyFile
	if err := json.Unmarshal(b, &f); err != nil {
		return loaded{}, fmt.Errorf("decode ledger %s: %w", path, err)
	}
	if f.Version != legacyLedgerVersion {
		return loaded{}, fmt.Errorf("ledger %s: unsupported version %d (want %d)", path, f.Version, ledgerVersion)
	}
	for i, e := range f.Credentials {
		if e == nil || e.ID == "" {
			return loaded{}, fmt.Errorf("ledger %s: credentials[%d]: missing id", path, i)
		}
	}
	if err := rewriteLedger(path, f.Credentials); err != nil {
		return loaded{}, err
	}
	return loaded{entries: f.Credentials, converted: true}, nil
}

// encodeRecord renders one ledger line, newline included.
func encodeRecord(r record) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode ledger record: %w", err)
	}
	return append(b, '\n'), nil
}

func mintRecord(e *entry) record {
	return record{Op: opMint, ID: e.ID, Key: e.Key, Name: e.Name, Fingerprint: e.Fingerprint, CreatedAt: e.CreatedAt}
}

// appendRecord appends one line to the ledger (creating it, 0600, with its
// header, when it does not exist) and syncs it. size is the ledger's length
// before the append (-1: unknown, the file may not exist); it returns the
// length after. A failed append is cut off again, so that the next one
// does not follow half a record.
func appendRecord(path string, size int64, line []byte) (int64, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return size, fmt.Errorf("write ledger %s: %w", path, err)
	}
	defer f.Close()
	created := false
	if size < 0 {
		st, err := f.Stat()
		if err != nil {
			return size, fmt.Errorf("write ledger %s: %w", path, err)
		}
		if size = st.Size(); size == 0 {
			created = true
			line = append([]byte(`{"version":2}`+"\n"), line...)
		}
	}
	if _, err := f.Write(line); err != nil {
		_ = f.Truncate(size)
		return size, fmt.Errorf("write ledger %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Truncate(size)
		return size, fmt.Errorf("sync ledger %s: %w", path, err)
	}
	if created {
		if err := syncDir(filepath.Dir(path)); err != nil {
			return size, err
		}
	}
	return size + int64(len(line)), nil
}

// truncate cuts path to size and syncs it (a torn last line dropped).
func truncate(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("repair ledger %s: %w", path, err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("repair ledger %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("repair ledger %s: %w", path, err)
	}
	return nil
}

// rewriteLedger replaces path atomically with a log of entries: a temporary
// file in the same directory is written, synced and renamed over path,
// then the directory is synced so that the rename itself survives a crash.
// The file is 0600. Only a version-1 ledger's conversion uses it.
func rewriteLedger(path string, entries []*entry) (err error) {
	var buf bytes.Buffer
	buf.WriteString(`{"version":2}` + "\n")
	for _, e := range entries {
		for _, r := range []record{mintRecord(e), {Op: opRevoke, ID: e.ID, RevokedAt: e.RevokedAt}} {
			if r.Op == opRevoke && !e.revoked() {
				continue
			}
			line, err := encodeRecord(r)
			if err != nil {
				return err
			}
			buf.Write(line)
		}
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*") // created 0600
	if err != nil {
		return fmt.Errorf("write ledger %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("write ledger %s: %w", path, err)
	}
	if _, err = tmp.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("write ledger %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("sync ledger %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("write ledger %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replace ledger %s: %w", path, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync ledger directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync ledger directory %s: %w", dir, err)
	}
	return nil
}

// LedgerEntry is one credential of a ledger as ReadLedger returns it.
type LedgerEntry struct {
	ID, Key, Name, Fingerprint string
	CreatedAt, RevokedAt       time.Time
}

// ReadLedger returns the credentials recorded in the ledger at path, in
// mint order, for tools and tests that inspect the issuer from outside. It
// only reads: a torn last line is skipped, not repaired.
func ReadLedger(path string) ([]LedgerEntry, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read ledger %s: %w", path, err)
	}
	var entries []*entry
	first, _, _ := bytes.Cut(b, []byte("\n"))
	var h header
	switch {
	case len(bytes.TrimSpace(b)) == 0:
	case json.Unmarshal(first, &h) == nil && h.Version == ledgerVersion:
		if entries, _, err = replay(path, b); err != nil {
			return nil, err
		}
	default:
		var f legacyFile
		if err := json.Unmarshal(b, &f); err != nil {
			return nil, fmt.Errorf("decode ledger %s: %w", path, err)
		}
		entries = f.Credentials
	}
	out := make([]LedgerEntry, 0, len(entries))
	for _, e := range entries {
		out = append(out, LedgerEntry{ID: e.ID, Key: e.Key, Name: e.Name, Fingerprint: e.Fingerprint, CreatedAt: e.CreatedAt, RevokedAt: e.RevokedAt})
	}
	return out, nil
}
