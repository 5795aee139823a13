package app

import (
	"errors"
	"testing"
	"time"
)

// /readyz pings the store at most once a second, whatever the request rate.
func TestPingIsCachedForASecond(t *testing.T) {
	var c pingCache
	calls := 0
	ping := func() error { calls++; return errors.New("down") }
	t0 := time.Now()
	for i := range 100 {
		if err := c.do(t0.Add(time.Duration(i)*time.Millisecond), ping); err == nil {
			t.Fatal("the cached answer lost the error")
		}
	}
	if calls != 1 {
		t.Fatalf("%d pings within a second, want 1", calls)
	}
	c.do(t0.Add(time.Second), ping)
	if calls != 2 {
		t.Fatalf("no new ping after a second: %d", calls)
	}
}
