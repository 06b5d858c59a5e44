package controllers

import (
	"encoding/json"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/audit"
)

// scimEntryGrace is how long the SCIM server has to append a request's audit entry itself
// before the reconciler restores it from the request annotation.
const scimEntryGrace = 10 * time.Second

const restoredMessage = "restored from the request annotation: the SCIM server stopped before recording it"

// missingSCIMEntry returns the audit entry of the last SCIM request when the history does
// not hold it: the SCIM server writes the request (with its entry) in the same write as
// the change, then appends the entry, and a replica that dies in between would lose it.
// fresh is true while the SCIM server may still be appending it.
func missingSCIMEntry(u *scimv1.StackUser, limit int) (e *scimv1.AuditEntry, fresh time.Duration) {
	raw := u.Annotations[audit.AnnotationLastSCIMRequest]
	var info audit.RequestInfo
	if raw == "" || json.Unmarshal([]byte(raw), &info) != nil || info.Action == "" || info.RequestID == "" {
		return nil, 0
	}
	at, err := time.Parse(time.RFC3339Nano, info.Time)
	if err != nil {
		return nil, 0
	}
	h := u.Status.History
	for _, old := range h {
		// The reconciler's own entries for the same request carry a message (what it did
		// on the site); the SCIM server's entry has none, a restored one has ours.
		if old.Actor.RequestID == info.RequestID && old.Actor.Kind == scimv1.ActorIdentityProvider && old.Action == info.Action &&
			(old.Message == "" || old.Message == restoredMessage) {
			return nil, 0
		}
	}
	if len(h) >= limit && at.Before(h[len(h)-1].Time.Time) {
		return nil, 0 // aged out of the bounded history, not lost
	}
	if age := time.Since(at); age < scimEntryGrace {
		return nil, scimEntryGrace - age
	}
	return &scimv1.AuditEntry{
		Time:    metav1.NewTime(at),
		Actor:   scimv1.Actor{Kind: scimv1.ActorIdentityProvider, Name: clip(info.Tenant, 256), UserAgent: clip(info.UserAgent, 256), RequestID: clip(info.RequestID, 128)},
		Action:  info.Action,
		Changes: info.Changes,
		Result:  scimv1.ResultApplied,
		Message: restoredMessage,
	}, 0
}
