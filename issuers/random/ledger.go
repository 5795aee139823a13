package random

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// ledgerVersion is the schema version of the ledger file.
const ledgerVersion = 1

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

// ledgerFile is the on-disk form.
type ledgerFile struct {
	Version     int      `json:"version"`
	Credentials []*entry `json:"credentials"`
}

// loadLedger reads path; a missing file is an empty ledger.
func loadLedger(path string) ([]*entry, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read ledger %s: %w", path, err)
	}
	var f ledgerFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("decode ledger %s: %w", path, err)
	}
	if f.Version != ledgerVersion {
		return nil, fmt.Errorf("ledger %s: unsupported version %d (want %d)", path, f.Version, ledgerVersion)
	}
	for i, e := range f.Credentials {
		if e == nil || e.ID == "" {
			return nil, fmt.Errorf("ledger %s: credentials[%d]: missing id", path, i)
		}
	}
	return f.Credentials, nil
}

// writeLedger replaces path atomically: a temporary file in the same
// directory is written, synced and renamed over path, then the directory is
// synced so that the rename itself survives a crash. The file is 0600.
func writeLedger(path string, entries []*entry) (err error) {
	if entries == nil {
		entries = []*entry{}
	}
	b, err := json.MarshalIndent(ledgerFile{Version: ledgerVersion, Credentials: entries}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode ledger: %w", err)
	}
	b = append(b, '\n')
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
	if _, err = tmp.Write(b); err != nil {
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
