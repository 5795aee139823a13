package oidclogin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Cache is the per-user file of logins, one entry per daemon address: a
// token for one daemon is never sent to another. The file is 0600 in a
// 0700 directory; one that others can read is refused, as ssh refuses a
// private key they can read.
type Cache struct {
	Path string
}

// DefaultCache is $XDG_CONFIG_HOME/rekey/tokens.json (on Linux; the
// operating system's per-user configuration directory elsewhere).
func DefaultCache() (Cache, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return Cache{}, fmt.Errorf("oidc login cache: %w", err)
	}
	return Cache{Path: filepath.Join(dir, "rekey", "tokens.json")}, nil
}

// cacheFile is the file's content.
type cacheFile struct {
	Version int               `json:"version"`
	Entries map[string]*Entry `json:"entries"`
}

// Key is the cache key of a daemon address: the address as REKEY_ADDR
// gives it, without surrounding space or a trailing slash, http:// added
// when it names no scheme (as the CLI dials it).
func Key(addr string) string {
	a := strings.TrimRight(strings.TrimSpace(addr), "/")
	if !strings.Contains(a, "://") && !strings.HasPrefix(a, "unix:") {
		a = "http://" + a
	}
	return a
}

// ErrInsecureCache: the cache file can be read by others.
var ErrInsecureCache = errors.New("group or others can read it; it holds login tokens: remove it (rekey logout) or chmod 600 it, then run rekey login")

// Get returns the entry for addr, or nil when there is none.
func (c Cache) Get(addr string) (*Entry, error) {
	f, err := c.read()
	if err != nil {
		return nil, err
	}
	return f.Entries[Key(addr)], nil
}

// Put stores e for addr, replacing the file atomically.
func (c Cache) Put(addr string, e *Entry) error {
	f, err := c.read()
	if err != nil && !errors.Is(err, ErrInsecureCache) {
		return err
	}
	if errors.Is(err, ErrInsecureCache) {
		// A new login replaces a file others could read: its old tokens
		// are not carried over.
		f = &cacheFile{Entries: map[string]*Entry{}}
	}
	f.Entries[Key(addr)] = e
	return c.write(f)
}

// Delete removes addr's entry and reports whether there was one. An
// insecure file is removed whole: its tokens must be assumed read.
func (c Cache) Delete(addr string) (bool, error) {
	f, err := c.read()
	if errors.Is(err, ErrInsecureCache) {
		return true, os.Remove(c.Path)
	}
	if err != nil {
		return false, err
	}
	k := Key(addr)
	if _, ok := f.Entries[k]; !ok {
		return false, nil
	}
	delete(f.Entries, k)
	if len(f.Entries) == 0 {
		return true, os.Remove(c.Path)
	}
	return true, c.write(f)
}

func (c Cache) read() (*cacheFile, error) {
	f := &cacheFile{Version: 1, Entries: map[string]*Entry{}}
	fh, err := os.Open(c.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("oidc login cache: %w", err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("oidc login cache: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("oidc login cache %s is mode %04o: %w", c.Path, st.Mode().Perm(), ErrInsecureCache)
	}
	if err := json.NewDecoder(fh).Decode(f); err != nil {
		return nil, fmt.Errorf("oidc login cache %s: not a cache file (%v): remove it and run rekey login", c.Path, err)
	}
	if f.Entries == nil {
		f.Entries = map[string]*Entry{}
	}
	return f, nil
}

func (c Cache) write(f *cacheFile) error {
	f.Version = 1
	dir := filepath.Dir(c.Path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("oidc login cache: %w", err)
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tokens-*.json")
	if err != nil {
		return fmt.Errorf("oidc login cache: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("oidc login cache: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("oidc login cache: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("oidc login cache: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("oidc login cache: %w", err)
	}
	if err := os.Rename(tmp.Name(), c.Path); err != nil {
		return fmt.Errorf("oidc login cache: %w", err)
	}
	return nil
}
