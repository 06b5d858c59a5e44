package controllers

import (
	"math/rand/v2"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// backoff hands out growing, jittered delays per object for failures that are answered
// with RequeueAfter (site errors, ignored writes), so a broken site is not hammered and a
// healthy one is retried quickly. Success resets it.
type backoff struct {
	min, max time.Duration

	mu       sync.Mutex
	failures map[types.NamespacedName]int
}

func newBackoff(min, max time.Duration) *backoff {
	if min <= 0 {
		min = time.Second
	}
	if max < min {
		max = 5 * time.Minute
	}
	return &backoff{min: min, max: max, failures: map[types.NamespacedName]int{}}
}

// next records a failure and returns the delay before the next attempt, at least floor.
func (b *backoff) next(key types.NamespacedName, floor time.Duration) time.Duration {
	b.mu.Lock()
	n := b.failures[key]
	b.failures[key] = n + 1
	b.mu.Unlock()
	d := b.max
	if n < 30 {
		d = min(b.min<<n, b.max)
	}
	d = d/2 + rand.N(d/2+1)
	return max(d, floor)
}

// reset forgets the failures of key.
func (b *backoff) reset(key types.NamespacedName) {
	b.mu.Lock()
	delete(b.failures, key)
	b.mu.Unlock()
}

// jitter spreads d by up to ±fraction, so tenants do not resync in step.
func jitter(d time.Duration, fraction float64) time.Duration {
	if fraction <= 0 || d <= 0 {
		return d
	}
	span := time.Duration(float64(d) * fraction)
	return d - span + rand.N(2*span+1)
}
