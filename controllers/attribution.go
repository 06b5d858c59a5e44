package controllers

import (
	"bytes"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/audit"
	"github.com/stackscim/stack-scim-operator/internal/clip"
)

var operatorActor = scimv1.Actor{Kind: scimv1.ActorOperator, Name: controllerName}

var driftActor = scimv1.Actor{Kind: scimv1.ActorDriftCorrection, Name: controllerName}

// specActor names who last changed the StackUser's spec: the identity provider when the
// SCIM request recorded in AnnotationLastSCIMRequest left the current generation,
// otherwise a GitOps edit named after the newest other field manager of the spec.
// Without a recorded generation, the newest spec manager decides (managedFields times
// have one-second resolution, so the generation is the better witness).
func specActor(u *scimv1.StackUser) scimv1.Actor {
	info, hasInfo := audit.LastRequest(u)
	var latest, latestOther *metav1.ManagedFieldsEntry
	for i := range u.ManagedFields {
		e := &u.ManagedFields[i]
		if e.Subresource != "" || e.FieldsV1 == nil || !bytes.Contains(e.FieldsV1.GetRawBytes(), []byte(`"f:spec"`)) {
			continue
		}
		if newer(e, latest) {
			latest = e
		}
		if e.Manager != audit.SCIMFieldManager && newer(e, latestOther) {
			latestOther = e
		}
	}
	fromIdP := latest != nil && latest.Manager == audit.SCIMFieldManager
	if hasInfo && info.Generation > 0 {
		fromIdP = info.Generation >= u.Generation
		latest = latestOther
	}
	if !fromIdP {
		if latest == nil {
			return operatorActor
		}
		return scimv1.Actor{Kind: scimv1.ActorGitOps, Name: clip.Prefix(latest.Manager, 256)}
	}
	a := scimv1.Actor{Kind: scimv1.ActorIdentityProvider, Name: u.Spec.SettingsRef.Name}
	if hasInfo {
		if info.Tenant != "" {
			a.Name = info.Tenant
		}
		a.UserAgent = info.UserAgent
		a.RequestID = info.RequestID
	}
	a.Name, a.UserAgent, a.RequestID = clip.Prefix(a.Name, 256), clip.Prefix(a.UserAgent, 256), clip.Prefix(a.RequestID, 128)
	return a
}

// newer reports whether managedFields entry e is at least as recent as cur.
func newer(e, cur *metav1.ManagedFieldsEntry) bool {
	return cur == nil || e.Time == nil || cur.Time == nil || !e.Time.Before(cur.Time)
}
