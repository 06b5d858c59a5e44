package server

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiters holds one token bucket per key (a tenant, or a tenant and a client address).
// Tenant buckets are generous: they only bite under real overload, because throttling
// Entra hard can put its job in quarantine. They are spent only by authenticated
// requests; failed authentication spends a bucket of its own per source, so a flood of
// bad tokens never makes the real IdP see a 429.
type limiters struct {
	mu    sync.Mutex
	m     map[string]*limiterEntry
	rps   rate.Limit
	burst int
	// maxKeys bounds the map: keys come from client addresses, which clients choose.
	maxKeys int
}

type limiterEntry struct {
	lim      *rate.Limiter
	lastSeen time.Time
}

func newLimiters(rps float64, burst int) *limiters {
	if rps < 0 {
		return nil
	}
	return &limiters{m: map[string]*limiterEntry{}, rps: rate.Limit(rps), burst: burst, maxKeys: 10000}
}

// allow takes a token for key, or says how long to wait for one.
func (l *limiters) allow(key string) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	now := time.Now()
	l.mu.Lock()
	e, ok := l.m[key]
	if !ok {
		if len(l.m) >= l.maxKeys {
			l.evictIdle(now)
		}
		e = &limiterEntry{lim: rate.NewLimiter(l.rps, l.burst)}
		l.m[key] = e
	}
	e.lastSeen = now
	l.mu.Unlock()
	res := e.lim.ReserveN(now, 1)
	if !res.OK() {
		return false, time.Second
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

// evictIdle drops buckets that have refilled (unused long enough to be full again), or
// the oldest half when every bucket is busy. Called with l.mu held.
func (l *limiters) evictIdle(now time.Time) {
	refill := time.Duration(float64(l.burst) / float64(l.rps) * float64(time.Second))
	for k, e := range l.m {
		if now.Sub(e.lastSeen) > refill {
			delete(l.m, k)
		}
	}
	if len(l.m) < l.maxKeys {
		return
	}
	cut := now
	for _, e := range l.m {
		if e.lastSeen.Before(cut) {
			cut = e.lastSeen
		}
	}
	mid := cut.Add(now.Sub(cut) / 2)
	for k, e := range l.m {
		if !e.lastSeen.After(mid) {
			delete(l.m, k)
		}
	}
}
