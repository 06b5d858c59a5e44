package controllers

import (
	"math/rand/v2"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
)

// retryPolicy is the one retry policy of the reconcilers for failures answered with
// RequeueAfter (site errors, ignored writes, an unreachable tenant): client-go's per-item
// exponential failure rate limiter, never sooner than the site's Retry-After. A broken
// site is not hammered, a healthy one is retried quickly, and success resets it.
type retryPolicy struct {
	limiter workqueue.TypedRateLimiter[types.NamespacedName]
}

func newRetryPolicy(minDelay, maxDelay time.Duration) *retryPolicy {
	if minDelay <= 0 {
		minDelay = time.Second
	}
	if maxDelay < minDelay {
		maxDelay = 5 * time.Minute
	}
	return &retryPolicy{limiter: workqueue.NewTypedItemExponentialFailureRateLimiter[types.NamespacedName](minDelay, maxDelay)}
}

// next records a failure of key and returns the delay before its next attempt, at least
// floor (the site's Retry-After).
func (p *retryPolicy) next(key types.NamespacedName, floor time.Duration) time.Duration {
	return max(p.limiter.When(key), floor)
}

// reset forgets the failures of key.
func (p *retryPolicy) reset(key types.NamespacedName) { p.limiter.Forget(key) }

// jitter spreads d by up to ±fraction, so tenants do not resync (or probe) in step.
func jitter(d time.Duration, fraction float64) time.Duration {
	if fraction <= 0 || d <= 0 {
		return d
	}
	span := time.Duration(float64(d) * fraction)
	return d - span + rand.N(2*span+1)
}
