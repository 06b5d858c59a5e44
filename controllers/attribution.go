package controllers

import (
	"bytes"
	"encoding/json"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/audit"
)

var operatorActor = scimv1.Actor{Kind: scimv1.ActorOperator, Name: controllerName}

var driftActor = scimv1.Actor{Kind: scimv1.ActorDriftCorrection, Name: controllerName}

// specActor names who last changed the StackUser's spec: the identity provider when the
// newest managedFields entry touching the spec belongs to the SCIM server (with the
// request it recorded in AnnotationLastSCIMRequest), otherwise a GitOps edit named after
// its field manager.
func specActor(u *scimv1.StackUser) scimv1.Actor {
	var latest *metav1.ManagedFieldsEntry
	for i := range u.ManagedFields {
		e := &u.ManagedFields[i]
		if e.Subresource != "" || e.FieldsV1 == nil || !bytes.Contains(e.FieldsV1.Raw, []byte(`"f:spec"`)) {
			continue
		}
		if latest == nil || e.Time == nil || latest.Time == nil || !e.Time.Before(latest.Time) {
			latest = e
		}
	}
	if latest == nil {
		return operatorActor
	}
	if latest.Manager != audit.SCIMFieldManager {
		return scimv1.Actor{Kind: scimv1.ActorGitOps, Name: clip(latest.Manager, 256)}
	}
	a := scimv1.Actor{Kind: scimv1.ActorIdentityProvider, Name: u.Spec.SettingsRef.Name}
	var info audit.RequestInfo
	if raw := u.Annotations[audit.AnnotationLastSCIMRequest]; raw != "" && json.Unmarshal([]byte(raw), &info) == nil {
		if info.Tenant != "" {
			a.Name = info.Tenant
		}
		a.UserAgent = info.UserAgent
		a.RequestID = info.RequestID
	}
	a.Name, a.UserAgent, a.RequestID = clip(a.Name, 256), clip(a.UserAgent, 256), clip(a.RequestID, 128)
	return a
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
