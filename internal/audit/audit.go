// Package audit records changes to StackUsers: as a bounded, newest-first list in
// status.history, as a Kubernetes Event, and as a structured log line. The SCIM server
// leaves its entries on the object it writes (AnnotationPendingAudit); the reconcilers,
// the only writers of the history, move them in with their own entries, under the
// resourceVersion they read.
package audit

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
)

// maxValue bounds an old/new value in an entry; the CRD allows 1024 characters.
const maxValue = 1024

// MaxHistoryBytes bounds status.history in bytes (its JSON encoding), whatever the
// count limit: 200 entries of large changes would otherwise pass etcd's 1.5 MiB object
// limit, and every status write would fail from then on. The oldest entries go first;
// the newest one is always kept.
const MaxHistoryBytes = 256 << 10

// Prepend puts entries (oldest first, as they happened) at the front of history, newest
// first, and trims it to limit entries and MaxHistoryBytes.
func Prepend(history []scimv1.AuditEntry, limit int, entries ...scimv1.AuditEntry) []scimv1.AuditEntry {
	out := make([]scimv1.AuditEntry, 0, len(history)+len(entries))
	for i := len(entries) - 1; i >= 0; i-- {
		out = append(out, sanitize(entries[i]))
	}
	out = append(out, history...)
	return out[:keep(sizes(out), limit)]
}

// keep is how many of the newest-first entries, of these encoded sizes, fit in limit
// entries and MaxHistoryBytes.
func keep(newestFirst []uint32, limit int) int {
	if limit <= 0 {
		limit = 20
	}
	n, size := 0, 0
	for _, b := range newestFirst[:min(limit, len(newestFirst))] {
		size += int(b) + 1
		if n > 0 && size > MaxHistoryBytes {
			break
		}
		n++
	}
	return n
}

func sanitize(e scimv1.AuditEntry) scimv1.AuditEntry {
	if e.Time.IsZero() {
		e.Time = metav1.Now()
	}
	e.Message = truncate(e.Message)
	if len(e.Changes) > 64 {
		e.Changes = e.Changes[:64]
	}
	for i := range e.Changes {
		e.Changes[i].Old = truncate(e.Changes[i].Old)
		e.Changes[i].New = truncate(e.Changes[i].New)
	}
	return e
}

func truncate(s string) string { return clipValue(s, maxValue) }

// conflictBackoff outlasts a burst of spec writes to one user (a PATCH storm from the IdP)
// while a history append waits its turn; client-go's default gives up after 4.
var conflictBackoff = wait.Backoff{Steps: 12, Duration: 5 * time.Millisecond, Factor: 1.5, Jitter: 0.5, Cap: time.Second}

// Recorder emits the Event and log line of an entry and can persist entries.
type Recorder struct {
	Client client.Client
	// Live reads a fresh copy after a conflict (nil: Client, which may be a lagging cache).
	Live client.Reader
	// Trails knows the history of the cache's copies, which do not carry it (nil: the
	// copies carry it).
	Trails *Trails
	Events events.EventRecorder // may be nil
	// EventLimit bounds the Events sent per second (nil: no bound). Events are
	// best-effort and each one is an API write; the history and the log lines keep every
	// entry, so a bulk push does not spend the API server on Events.
	EventLimit *rate.Limiter
	Log        logr.Logger
}

func (r *Recorder) reader() client.Reader {
	if r.Live != nil {
		return r.Live
	}
	return r.Client
}

// Emit writes the log line and sends the Event of each entry.
func (r *Recorder) Emit(user *scimv1.StackUser, entries ...scimv1.AuditEntry) {
	r.LogEntries(user, entries...)
	r.Event(user, entries...)
}

// LogEntries writes the structured log line of each entry.
func (r *Recorder) LogEntries(user *scimv1.StackUser, entries ...scimv1.AuditEntry) {
	for _, e := range entries {
		kv := []any{
			"stackuser", client.ObjectKeyFromObject(user).String(),
			"userName", user.Spec.UserName,
			"action", e.Action, "result", string(e.Result),
			"actor", string(e.Actor.Kind), "actorName", e.Actor.Name,
		}
		if e.Actor.RequestID != "" {
			kv = append(kv, "requestId", e.Actor.RequestID)
		}
		if len(e.Changes) > 0 {
			kv = append(kv, "changes", Summary(e.Changes))
		}
		if e.Message != "" {
			kv = append(kv, "message", e.Message)
		}
		r.Log.Info("audit", kv...)
	}
}

// Event sends the Kubernetes Event of each entry, within EventLimit.
func (r *Recorder) Event(user *scimv1.StackUser, entries ...scimv1.AuditEntry) {
	if r.Events == nil {
		return
	}
	for _, e := range entries {
		if r.EventLimit != nil && !r.EventLimit.Allow() {
			eventsDropped.Inc()
			continue
		}
		eventType := corev1.EventTypeNormal
		if e.Result == scimv1.ResultFailed || e.Result == scimv1.ResultBlocked {
			eventType = corev1.EventTypeWarning
		}
		note := fmt.Sprintf("%s %s by %s", e.Action, strings.ToLower(string(e.Result)), actorText(e.Actor))
		if len(e.Changes) > 0 {
			note += ": " + Summary(e.Changes)
		}
		if e.Message != "" {
			note += " (" + e.Message + ")"
		}
		r.Events.Eventf(user, nil, eventType, e.Action+string(e.Result), e.Action, "%s", truncate(note))
	}
}

// Append persists entries at the front of the user's history, after the SCIM requests'
// entries still pending on it, retrying on conflict against a fresh read; then it emits
// them (the pending ones were logged when they were made: only their Events are sent).
// user is refreshed with what was stored.
func (r *Recorder) Append(ctx context.Context, user *scimv1.StackUser, limit int, entries ...scimv1.AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	for i := range entries {
		entries[i] = sanitize(entries[i])
	}
	var pending []scimv1.AuditEntry
	first := true
	// A patch that does not apply (computed against a history that is not the stored one)
	// is retried like a conflict, against the history read live.
	retriable := func(err error) bool {
		return apierrors.IsConflict(err) || apierrors.IsInvalid(err) || apierrors.IsBadRequest(err)
	}
	err := retry.OnError(conflictBackoff, retriable, func() error {
		trail, known := r.Trails.Of(user)
		if !first || !known || (r.Trails != nil && trail.Len() == 0) {
			// After a conflict, when the cache's copy was superseded twice, or before
			// writing a first history (a merge patch, which would replace entries the
			// cache did not show): read it live, history included.
			if err := r.reader().Get(ctx, client.ObjectKeyFromObject(user), user); err != nil {
				return err
			}
			trail = TrailOf(user)
		}
		first = false
		pending = Oldest(Unrecorded(user, trail, limit))
		return r.Client.Status().Patch(ctx, user, NewStatusPatch(user, trail, limit, nil, append(slices.Clone(pending), entries...)...))
	})
	if err != nil {
		return fmt.Errorf("recording audit entry: %w", err)
	}
	r.Event(user, pending...)
	r.Emit(user, entries...)
	return nil
}

// Oldest reverses newest-first entries into the order they happened.
func Oldest(entries []scimv1.AuditEntry) []scimv1.AuditEntry {
	out := slices.Clone(entries)
	slices.Reverse(out)
	return out
}

// Summary renders changes as "field: old → new; ...".
func Summary(changes []scimv1.FieldChange) string {
	parts := make([]string, 0, len(changes))
	for _, c := range changes {
		parts = append(parts, fmt.Sprintf("%s: %s → %s", c.Field, display(c.Old), display(c.New)))
	}
	return strings.Join(parts, "; ")
}

func display(v string) string {
	if v == "" {
		return "(unset)"
	}
	return fmt.Sprintf("%q", v)
}

func actorText(a scimv1.Actor) string {
	if a.Name == "" {
		return string(a.Kind)
	}
	return string(a.Kind) + " " + a.Name
}

// Diff lists the fields whose values differ between two flattened views.
func Diff(old, new map[string]string) []scimv1.FieldChange {
	keys := make([]string, 0, len(old)+len(new))
	seen := map[string]bool{}
	for k := range old {
		keys = append(keys, k)
		seen[k] = true
	}
	for k := range new {
		if !seen[k] {
			keys = append(keys, k)
		}
	}
	sortStrings(keys)
	var out []scimv1.FieldChange
	for _, k := range keys {
		if old[k] != new[k] {
			out = append(out, scimv1.FieldChange{Field: k, Old: old[k], New: new[k]})
		}
	}
	return out
}
