// Package audit records changes to StackUsers: as a bounded, newest-first list in
// status.history, as a Kubernetes Event, and as a structured log line. The SCIM server and
// the reconcilers write the same history concurrently, so appends retry on conflict
// against a fresh read instead of overwriting each other's entries.
package audit

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/go-logr/logr"
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

// Prepend puts entries (oldest first, as they happened) at the front of history, newest
// first, and trims it to limit.
func Prepend(history []scimv1.AuditEntry, limit int, entries ...scimv1.AuditEntry) []scimv1.AuditEntry {
	if limit <= 0 {
		limit = 20
	}
	out := make([]scimv1.AuditEntry, 0, min(limit, len(history)+len(entries)))
	for i := len(entries) - 1; i >= 0 && len(out) < limit; i-- {
		out = append(out, sanitize(entries[i]))
	}
	for _, e := range history {
		if len(out) >= limit {
			break
		}
		out = append(out, e)
	}
	return out
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

func truncate(s string) string {
	if len(s) <= maxValue {
		return s
	}
	cut := maxValue - 3
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// conflictBackoff outlasts a burst of writers on one user (a PATCH storm from the IdP
// while the reconciler records its own entries); client-go's default gives up after 4.
var conflictBackoff = wait.Backoff{Steps: 12, Duration: 5 * time.Millisecond, Factor: 1.5, Jitter: 0.5, Cap: time.Second}

// retriable errors are worth a fresh read and another try: a conflict (the first write of
// a history is locked), or a patch whose trim no longer applies because another writer
// trimmed first.
func retriable(err error) bool {
	return apierrors.IsConflict(err) || apierrors.IsInvalid(err) || apierrors.IsInternalError(err)
}

// Recorder emits the Event and log line of an entry and can persist entries.
type Recorder struct {
	Client client.Client
	Events events.EventRecorder // may be nil
	Log    logr.Logger
}

// Emit sends the Event and writes the log line for entries already stored on user.
func (r *Recorder) Emit(user *scimv1.StackUser, entries ...scimv1.AuditEntry) {
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
		if r.Events == nil {
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

// Append persists entries at the front of the user's history with conflict retries, then
// emits them. user is refreshed with what was stored.
func (r *Recorder) Append(ctx context.Context, user *scimv1.StackUser, limit int, entries ...scimv1.AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	for i := range entries {
		entries[i] = sanitize(entries[i])
	}
	first := true
	err := retry.OnError(conflictBackoff, retriable, func() error {
		if !first {
			if err := r.Client.Get(ctx, client.ObjectKeyFromObject(user), user); err != nil {
				return err
			}
		}
		first = false
		if CanPatchHistory(user) {
			return r.Client.Status().Patch(ctx, user, NewStatusPatch(len(user.Status.History), limit, nil, entries...))
		}
		user.Status.History = Prepend(user.Status.History, limit, entries...)
		user.ManagedFields = nil // the cache trims them; sending none keeps the server's
		return r.Client.Status().Update(ctx, user)
	})
	if err != nil {
		return fmt.Errorf("recording audit entry: %w", err)
	}
	r.Emit(user, entries...)
	return nil
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
