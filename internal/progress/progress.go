// Package progress measures how fast each tenant's provisioning backlog drains, for the
// estimate ScimSettings status.backlog shows: the StackUser reconciler reports each user
// change it has finished, and the ScimSettings reconciler reads the rate over the last
// minute. A sliding window of one-second buckets, not an average since start: a push
// that slows (the site's rate limit, a 429) shows in the estimate within a minute.
package progress

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Window is how far back the rate looks.
const Window = time.Minute

const buckets = int(Window / time.Second)

// Meter counts finished user changes per tenant (the ScimSettings' namespace and name).
type Meter struct {
	mu      sync.Mutex
	tenants map[types.NamespacedName]*window
	now     func() time.Time
}

// window holds one count per second of the last Window; bucket i is for second sec[i].
type window struct {
	sec   [buckets]int64
	count [buckets]int64
	// first is when this process first counted for the tenant: the rate is taken over
	// less than a Window until then.
	first time.Time
}

// NewMeter returns an empty meter.
func NewMeter() *Meter {
	return &Meter{tenants: map[types.NamespacedName]*window{}, now: time.Now}
}

// Done counts one finished user change of tenant.
func (m *Meter) Done(tenant types.NamespacedName) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	w := m.tenants[tenant]
	if w == nil {
		w = &window{first: now}
		m.tenants[tenant] = w
	}
	s := now.Unix()
	i := int(s % int64(buckets))
	if w.sec[i] != s {
		w.sec[i], w.count[i] = s, 0
	}
	w.count[i]++
}

// PerMinute is the tenant's rate of finished changes over the last Window, scaled to a
// minute; 0 when none finished in it.
func (m *Meter) PerMinute(tenant types.NamespacedName) float64 {
	if m == nil {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	w := m.tenants[tenant]
	if w == nil {
		return 0
	}
	now := m.now()
	oldest := now.Unix() - int64(buckets) + 1
	var n int64
	for i := range w.sec {
		if w.sec[i] >= oldest {
			n += w.count[i]
		}
	}
	if n == 0 {
		return 0
	}
	// Over the part of the window this process has been counting, at least a second.
	span := min(Window, max(time.Second, now.Sub(w.first)))
	return float64(n) * float64(time.Minute) / float64(span)
}

// Forget drops a deleted tenant.
func (m *Meter) Forget(tenant types.NamespacedName) {
	if m == nil {
		return
	}
	m.mu.Lock()
	delete(m.tenants, tenant)
	m.mu.Unlock()
}

// ETA is when backlog changes finish at perMinute, from now; false when there is no
// backlog or no rate to go by.
func ETA(now time.Time, backlog int, perMinute float64) (time.Time, bool) {
	if backlog <= 0 || perMinute <= 0 {
		return time.Time{}, false
	}
	return now.Add(time.Duration(float64(backlog) / perMinute * float64(time.Minute))), true
}
