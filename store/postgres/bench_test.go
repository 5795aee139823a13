package postgres

import (
	"testing"

	"github.com/rekeyhq/rekey/store/sqlstore/storetest"
	"github.com/rekeyhq/rekey/testing/testenv"
)

// BenchmarkScrapeCounters10k: one scrape of the counters read from the
// store, over 10,000 keys with history (see storetest.BenchmarkScrapeCounters).
func BenchmarkScrapeCounters10k(b *testing.B) {
	s, err := Open(b.Context(), testenv.Postgres(b).CreateDatabase(b))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.BenchmarkScrapeCounters(b, s, 10_000)
}
