package controllers

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/audit"
)

func TestSpecActor_namesTheLatestSpecWriter(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	t1 := metav1.NewTime(t0.Add(time.Minute))
	spec := metav1.NewFieldsV1(`{"f:spec":{"f:title":{}}}`)
	meta := metav1.NewFieldsV1(`{"f:metadata":{"f:finalizers":{}}}`)
	req := `{"requestId":"r-1","userAgent":"Okta SCIM Client 1.0.0","tenant":"ns/tenant"}`
	cases := map[string]struct {
		fields []metav1.ManagedFieldsEntry
		want   scimv1.Actor
	}{
		"identity provider with its request": {
			fields: []metav1.ManagedFieldsEntry{{Manager: audit.SCIMFieldManager, Time: &t1, FieldsV1: spec}},
			want:   scimv1.Actor{Kind: scimv1.ActorIdentityProvider, Name: "ns/tenant", UserAgent: "Okta SCIM Client 1.0.0", RequestID: "r-1"},
		},
		"a later GitOps edit wins": {
			fields: []metav1.ManagedFieldsEntry{
				{Manager: "argocd-controller", Time: &t1, FieldsV1: spec},
				{Manager: audit.SCIMFieldManager, Time: &t0, FieldsV1: spec},
			},
			want: scimv1.Actor{Kind: scimv1.ActorGitOps, Name: "argocd-controller"},
		},
		"metadata and status writers do not count": {
			fields: []metav1.ManagedFieldsEntry{
				{Manager: audit.SCIMFieldManager, Time: &t0, FieldsV1: spec},
				{Manager: audit.ControllerFieldManager, Time: &t1, FieldsV1: meta},
				{Manager: "kubectl", Time: &t1, FieldsV1: spec, Subresource: "status"},
			},
			want: scimv1.Actor{Kind: scimv1.ActorIdentityProvider, Name: "ns/tenant", UserAgent: "Okta SCIM Client 1.0.0", RequestID: "r-1"},
		},
		"nobody": {want: operatorActor},
	}
	genReq := `{"requestId":"r-2","userAgent":"Okta SCIM Client 1.0.0","tenant":"ns/tenant","generation":3}`
	for name, tc := range map[string]struct {
		generation int64
		want       scimv1.Actor
	}{
		// Both writers in the same second: managedFields cannot order them, the generation can.
		"the request left this generation":   {3, scimv1.Actor{Kind: scimv1.ActorIdentityProvider, Name: "ns/tenant", UserAgent: "Okta SCIM Client 1.0.0", RequestID: "r-2"}},
		"the spec changed after the request": {4, scimv1.Actor{Kind: scimv1.ActorGitOps, Name: "kubectl-edit"}},
	} {
		t.Run(name, func(t *testing.T) {
			u := &scimv1.StackUser{}
			u.Generation = tc.generation
			u.ManagedFields = []metav1.ManagedFieldsEntry{
				{Manager: "kubectl-edit", Time: &t1, FieldsV1: spec},
				{Manager: audit.SCIMFieldManager, Time: &t1, FieldsV1: spec},
			}
			u.Annotations = map[string]string{audit.AnnotationLastSCIMRequest: genReq}
			NewWithT(t).Expect(specActor(u)).To(Equal(tc.want))
		})
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			u := &scimv1.StackUser{}
			u.ManagedFields = tc.fields
			u.Annotations = map[string]string{audit.AnnotationLastSCIMRequest: req}
			u.Spec.SettingsRef.Name = "tenant"
			NewWithT(t).Expect(specActor(u)).To(Equal(tc.want))
		})
	}
}

// Drift is read from status.drift, never parsed back out of the Drifted message.
func TestDriftListed_readsStatusDrift(t *testing.T) {
	g := NewWithT(t)
	u := &scimv1.StackUser{}
	u.Status.Conditions = []metav1.Condition{{Type: scimv1.ConditionDrifted, Status: metav1.ConditionTrue,
		Message: "changed by hand on the site, not corrected (driftPolicy Report): title: x → y"}}
	u.Status.Drift = []scimv1.DriftedField{{Field: "active", SiteValue: "false", WantedValue: "true"},
		{Field: "name.givenName", SiteValue: "B", WantedValue: "A"}}
	g.Expect(driftListed(u, "active")).To(BeTrue())
	g.Expect(driftListed(u, "name.givenName")).To(BeTrue())
	g.Expect(driftListed(u, "title")).To(BeFalse(), "the message is not parsed")
	u.Status.Drift = nil
	g.Expect(driftListed(u, "active")).To(BeFalse())
}

func TestDriftedFields_keepTheFirstSeenTime(t *testing.T) {
	g := NewWithT(t)
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	t1 := metav1.NewTime(t0.Add(time.Hour))
	prev := []scimv1.DriftedField{{Field: "active", SiteValue: "false", WantedValue: "true", Since: t0}}
	got := driftedFields(prev, []scimv1.FieldChange{{Field: "active", Old: "true", New: "false"}, {Field: "title", Old: "A", New: "B"}}, t1)
	g.Expect(got).To(Equal([]scimv1.DriftedField{
		{Field: "active", SiteValue: "false", WantedValue: "true", Since: t0},
		{Field: "title", SiteValue: "B", WantedValue: "A", Since: t1},
	}))
}

func TestReadyCondition_summarisesTheOthers(t *testing.T) {
	g := NewWithT(t)
	c := func(typ string, s metav1.ConditionStatus, reason string) metav1.Condition {
		return metav1.Condition{Type: typ, Status: s, Reason: reason}
	}
	synced := c(scimv1.ConditionSynced, metav1.ConditionTrue, ReasonSynced)
	g.Expect(readyCondition([]metav1.Condition{synced}).Status).To(Equal(metav1.ConditionTrue))
	g.Expect(readyCondition([]metav1.Condition{synced, c(scimv1.ConditionRoleChangeBlocked, metav1.ConditionTrue, ReasonPromotionNotAllowed)}).Reason).
		To(Equal(ReasonPromotionNotAllowed))
	g.Expect(readyCondition([]metav1.Condition{synced, c(scimv1.ConditionDrifted, metav1.ConditionTrue, ReasonDriftReported)}).Reason).
		To(Equal(ReasonDriftReported))
	g.Expect(readyCondition([]metav1.Condition{c(scimv1.ConditionSynced, metav1.ConditionFalse, ReasonSiteUnreachable)}).Reason).
		To(Equal(ReasonSiteUnreachable))
}
