package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/rekeyhq/rekey/store/sqlstore/storetest"
)

// BenchmarkScrapeCounters10k: one scrape of the counters read from the
// store, over 10,000 keys with history (see storetest.BenchmarkScrapeCounters).
func BenchmarkScrapeCounters10k(b *testing.B) {
	s, err := Open(b.Context(), filepath.Join(b.TempDir(), "rekey.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.BenchmarkScrapeCounters(b, s, 10_000)
}
