package audit

import (
	"encoding/json"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
)

// Trail is what the audit writers need to know of a user's status.history to add to it
// by JSON patch: how many entries it holds and the encoded size of each (the count limit
// and MaxHistoryBytes), the oldest entry's time, and the entries themselves when the copy
// at hand carries them. A Trail made by Trails.Strip has no entries: the cache filtered
// the pending annotation against them already.
type Trail struct {
	sizes   []uint32 // newest first
	oldest  metav1.Time
	entries []scimv1.AuditEntry
}

// TrailOf is the trail of the history u carries.
func TrailOf(u *scimv1.StackUser) Trail {
	h := u.Status.History
	t := Trail{sizes: sizes(h), entries: h}
	if len(h) > 0 {
		t.oldest = h[len(h)-1].Time
	}
	return t
}

// Len is the number of entries in the history.
func (t Trail) Len() int { return len(t.sizes) }

// recorded reports whether a SCIM request's pending entry is in the history, or would
// already have been trimmed from it at limit.
func (t Trail) recorded(limit int, e scimv1.AuditEntry) bool {
	for _, old := range t.entries {
		// The reconciler's entries for the same request (what it did on the site) carry a
		// message; the request's own entry has none.
		if old.Actor.Kind == e.Actor.Kind && old.Actor.RequestID == e.Actor.RequestID && old.Action == e.Action && old.Message == e.Message {
			return true
		}
	}
	return t.Len() > 0 && t.Len() >= limit && e.Time.Before(&t.oldest)
}

func sizes(entries []scimv1.AuditEntry) []uint32 {
	if len(entries) == 0 {
		return nil
	}
	out := make([]uint32, len(entries))
	for i, e := range entries {
		if b, err := json.Marshal(e); err == nil {
			out[i] = uint32(len(b))
		}
	}
	return out
}

// Trails keeps the history out of the informer cache. At the default limit a user's
// history is three quarters of its cached object (about 11 of 14 KiB in memory), and only
// the audit writers need it, and only its shape: Strip, the cache transform's part,
// records each StackUser's Trail by object and resourceVersion and drops the entries; Of
// gives the writers that Trail back for the copy they read.
type Trails struct {
	mu sync.Mutex
	m  map[types.NamespacedName]*versions
}

// versions holds the trails of an object's two newest resourceVersions: the cache
// transform sees a version just before the cache hands it out, so the copy a reconcile
// holds may be one behind.
type versions struct {
	rv    [2]string
	trail [2]Trail
}

// NewTrails returns an empty store.
func NewTrails() *Trails { return &Trails{m: map[types.NamespacedName]*versions{}} }

// Strip records u's trail for its resourceVersion, keeps in the pending annotation only
// the entries the history does not hold, and drops the history from u. u is the cache's
// copy, about to be stored.
// A nil store keeps the history where it is.
func (t *Trails) Strip(u *scimv1.StackUser) {
	trail := TrailOf(u)
	keepUnrecorded(u, trail)
	if t == nil {
		return
	}
	trail.entries = nil
	u.Status.History = nil
	key := types.NamespacedName{Namespace: u.Namespace, Name: u.Name}
	t.mu.Lock()
	defer t.mu.Unlock()
	v := t.m[key]
	if v == nil {
		v = &versions{}
		t.m[key] = v
	}
	for i, rv := range v.rv {
		if rv == u.ResourceVersion {
			// Seen before (a relist passes objects through the transform again, already
			// stripped): the first trail is the one made from the history.
			if trail.Len() > 0 {
				v.trail[i] = trail
			}
			return
		}
	}
	v.rv[1], v.trail[1] = v.rv[0], v.trail[0]
	v.rv[0], v.trail[0] = u.ResourceVersion, trail
}

// Of returns the trail of u's history: the history u carries, or for a cached copy the
// trail Strip recorded for its resourceVersion. ok is false when neither is known (the
// version has been superseded twice since): read the user live and use TrailOf. A nil
// store knows only what u carries.
func (t *Trails) Of(u *scimv1.StackUser) (trail Trail, ok bool) {
	if t == nil || len(u.Status.History) > 0 {
		return TrailOf(u), true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if v := t.m[types.NamespacedName{Namespace: u.Namespace, Name: u.Name}]; v != nil {
		for i, rv := range v.rv {
			if rv != "" && rv == u.ResourceVersion {
				return v.trail[i], true
			}
		}
	}
	return Trail{}, false
}

// Forget drops what is kept of a deleted object.
func (t *Trails) Forget(key types.NamespacedName) {
	if t == nil {
		return
	}
	t.mu.Lock()
	delete(t.m, key)
	t.mu.Unlock()
}

// Len is the number of objects whose trails are kept.
func (t *Trails) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

// keepUnrecorded leaves in the pending annotation only the entries the history does not
// hold, and drops it when none are left, so the cache holds no second copy of recorded
// entries. The trimmed-from-a-full-history rule is left to the writers, who know the
// tenant's limit (the largest limit is assumed here).
func keepUnrecorded(u *scimv1.StackUser, trail Trail) {
	pending := Pending(u)
	// The largest historyLimit: an entry is only taken as trimmed when no limit could
	// have kept it.
	const maxLimit = 200
	var left []scimv1.AuditEntry
	for _, e := range pending {
		if !trail.recorded(maxLimit, e) {
			left = append(left, e)
		}
	}
	if len(left) == len(pending) {
		return
	}
	if len(left) == 0 {
		delete(u.Annotations, AnnotationPendingAudit)
		return
	}
	b, _ := json.Marshal(left)
	u.Annotations[AnnotationPendingAudit] = string(b)
}
