package fixed

import (
	"context"
	"testing"

	"github.com/rekeyhq/rekey/rotator"
)

func TestAlwaysZero(t *testing.T) {
	r, err := New(DefaultConfig()).Unauthorized(context.Background(), rotator.TrafficQuery{Key: "k"})
	if err != nil || r.Value != 0 || r.At.IsZero() {
		t.Fatalf("got %+v, %v; want a zero reading with a time", r, err)
	}
}
