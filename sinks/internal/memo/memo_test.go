package memo

import (
	"testing"
	"time"
)

func TestTTL(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	var c TTL[int]
	const ttl = time.Minute
	if _, ok := c.Get("a", t0, ttl); ok {
		t.Fatal("an empty memory remembers")
	}
	c.Put("a", 1, t0, ttl)
	if v, ok := c.Get("a", t0.Add(time.Minute), ttl); !ok || v != 1 {
		t.Fatalf("within the TTL: %d %v", v, ok)
	}
	if _, ok := c.Get("a", t0.Add(time.Minute+time.Nanosecond), ttl); ok {
		t.Fatal("remembered past its TTL")
	}
	c.Put("b", 2, t0, ttl)
	c.Put("c", 3, t0.Add(2*time.Minute), ttl) // prunes b
	if len(c.m) != 1 {
		t.Fatalf("expired entries kept: %v", c.m)
	}
	c.Forget("c")
	if _, ok := c.Get("c", t0.Add(2*time.Minute), ttl); ok {
		t.Fatal("forgotten entry remembered")
	}
}
