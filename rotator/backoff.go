package rotator

import (
	"math"
	"math/rand/v2"
	"time"
)

// Backoff computes the delay before retry n (n ≥ 1) of a failed step:
//
//	delay = min(Max, Base · Factor^(n-1)) · (1 ± Jitter·u),  u uniform in [0,1)
//
// so that many rotations failing together (an outage of a shared store) do
// not retry in lockstep.
type Backoff struct {
	Base   time.Duration
	Max    time.Duration
	Factor float64
	Jitter float64 // fraction, 0..1
}

// DefaultBackoff starts at 2s and caps at 5m with ±20% jitter.
var DefaultBackoff = Backoff{Base: 2 * time.Second, Max: 5 * time.Minute, Factor: 2, Jitter: 0.2}

// Delay returns the delay before retry n.
func (b Backoff) Delay(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	base, maxD, factor := b.Base, b.Max, b.Factor
	if base <= 0 {
		base = DefaultBackoff.Base
	}
	if maxD <= 0 {
		maxD = DefaultBackoff.Max
	}
	if factor < 1 {
		factor = DefaultBackoff.Factor
	}
	d := float64(base) * math.Pow(factor, float64(n-1))
	if d > float64(maxD) || math.IsInf(d, 0) {
		d = float64(maxD)
	}
	if b.Jitter > 0 {
		d *= 1 + b.Jitter*(2*rand.Float64()-1)
	}
	return time.Duration(d)
}
