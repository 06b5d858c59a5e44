package server

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiters holds one token bucket per tenant. Buckets are generous: they only bite under
// real overload, because throttling Entra hard can put its job in quarantine.
type limiters struct {
	mu    sync.Mutex
	m     map[string]*rate.Limiter
	rps   rate.Limit
	burst int
}

func newLimiters(rps float64, burst int) *limiters {
	if rps < 0 {
		return nil
	}
	return &limiters{m: map[string]*rate.Limiter{}, rps: rate.Limit(rps), burst: burst}
}

// allow takes a token for the tenant, or says how long to wait for one.
func (l *limiters) allow(tenant string) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	lim, ok := l.m[tenant]
	if !ok {
		lim = rate.NewLimiter(l.rps, l.burst)
		l.m[tenant] = lim
	}
	l.mu.Unlock()
	now := time.Now()
	res := lim.ReserveN(now, 1)
	if !res.OK() {
		return false, time.Second
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}
