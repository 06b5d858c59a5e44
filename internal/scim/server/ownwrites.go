package server

import (
	"context"
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/scim/userview"
)

// ownWriteWait bounds how long a list waits for the informer to show this replica's
// own writes. It normally takes milliseconds; past the bound the list is served anyway.
const ownWriteWait = 3 * time.Second

// ownWrites tracks the writes this replica acknowledged that the ordered view (fed by
// the informer) may not show yet. Lists wait for them, so that right after a 2xx write
// the next list on this replica counts and pages it: an import paging through /Users
// after a bulk create saw totalResults grow between pages. Reads by id need no wait:
// they overlay recentWrites.
type ownWrites struct {
	mu      sync.Mutex
	pending map[types.NamespacedName]ownWrite
}

type ownWrite struct {
	tenant  string
	uid     types.UID
	rv      string // the write's resourceVersion; empty for a delete
	deleted bool
	at      time.Time
}

// maxPendingOwnWrites triggers a sweep of the writes the view already shows, so the map
// stays small when nobody lists.
const maxPendingOwnWrites = 4096

func (o *ownWrites) record(view *userview.View, u *scimv1.StackUser, deleted bool) {
	if view == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pending == nil {
		o.pending = map[types.NamespacedName]ownWrite{}
	}
	w := ownWrite{tenant: u.Spec.SettingsRef.Name, uid: u.UID, deleted: deleted, at: time.Now()}
	if !deleted {
		w.rv = u.ResourceVersion
	}
	o.pending[types.NamespacedName{Namespace: u.Namespace, Name: u.Name}] = w
	if len(o.pending) > maxPendingOwnWrites {
		o.sweepLocked(view, "")
	}
}

// sweepLocked drops the writes the view shows (or that are older than recentTTL: others
// wrote since, or the view is hopelessly behind) and reports whether none of namespace's
// remain; an empty namespace sweeps them all.
func (o *ownWrites) sweepLocked(view *userview.View, namespace string) bool {
	done := true
	for k, w := range o.pending {
		if namespace != "" && k.Namespace != namespace {
			continue
		}
		if time.Since(w.at) > recentTTL || shows(view, k, w) {
			delete(o.pending, k)
			continue
		}
		done = false
	}
	return done
}

// shows reports whether the view reflects the write.
func shows(view *userview.View, k types.NamespacedName, w ownWrite) bool {
	uid, rv, ok := view.Version(k.Namespace, w.tenant, k.Name)
	if w.deleted {
		return !ok || uid != w.uid
	}
	return ok && (uid != w.uid || atLeast(rv, w.rv))
}

// atLeast compares resourceVersions. They are opaque to clients in general; here they
// come from one API server's etcd revisions, where a later write has a larger number. An
// unparsable one only matches itself.
func atLeast(have, want string) bool {
	if have == want {
		return true
	}
	h, err1 := strconv.ParseUint(have, 10, 64)
	w, err2 := strconv.ParseUint(want, 10, 64)
	return err1 == nil && err2 == nil && h >= w
}

// await waits, bounded by ownWriteWait, until the view shows every write this replica
// made in namespace.
func (o *ownWrites) await(ctx context.Context, view *userview.View, namespace string) {
	if view == nil {
		return
	}
	caughtUp := func(context.Context) (bool, error) {
		o.mu.Lock()
		defer o.mu.Unlock()
		return o.sweepLocked(view, namespace), nil
	}
	if done, _ := caughtUp(ctx); done {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, ownWriteWait)
	defer cancel()
	if wait.PollUntilContextCancel(ctx, 2*time.Millisecond, false, caughtUp) != nil {
		// Not shown in time (or deleted by someone else meanwhile): served as is, and not
		// waited for again.
		o.mu.Lock()
		defer o.mu.Unlock()
		for k := range o.pending {
			if k.Namespace == namespace {
				delete(o.pending, k)
			}
		}
	}
}
