package cachetrim

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/audit"
)

func TestTransform_keepsWhoWroteTheSpecAndDropsTheRest(t *testing.T) {
	g := NewWithT(t)
	now := metav1.NewTime(time.Now())
	earlier := metav1.NewTime(now.Add(-time.Hour))
	u := &scimv1.StackUser{ObjectMeta: metav1.ObjectMeta{
		Annotations: map[string]string{lastApplied: `{"a":"big copy"}`, "scim.stackscim.io/last-scim-request": `{"requestId":"r1"}`},
		ManagedFields: []metav1.ManagedFieldsEntry{
			{Manager: "argocd-controller", Operation: metav1.ManagedFieldsOperationApply, Time: &earlier,
				FieldsV1: metav1.NewFieldsV1(`{"f:spec":{"f:title":{}}}`)},
			{Manager: "kubectl-label", Operation: metav1.ManagedFieldsOperationUpdate, Time: &now,
				FieldsV1: metav1.NewFieldsV1(`{"f:metadata":{"f:labels":{}}}`)},
			{Manager: audit.SCIMFieldManager, Operation: metav1.ManagedFieldsOperationUpdate, Time: &now,
				FieldsV1: metav1.NewFieldsV1(`{"f:metadata":{"f:labels":{}},"f:spec":{"f:userName":{},"f:emails":{}}}`)},
			{Manager: "stack-scim-operator", Operation: metav1.ManagedFieldsOperationUpdate, Subresource: "status", Time: &now,
				FieldsV1: metav1.NewFieldsV1(`{"f:status":{"f:history":{}}}`)},
		},
	}}
	out, err := Transform(audit.NewTrails())(u)
	g.Expect(err).NotTo(HaveOccurred())
	got := out.(*scimv1.StackUser)
	g.Expect(got.Annotations).To(Equal(map[string]string{"scim.stackscim.io/last-scim-request": `{"requestId":"r1"}`}))
	g.Expect(got.ManagedFields).To(HaveLen(2), "the newest spec writer, and the newest other than the SCIM server")
	g.Expect(got.ManagedFields[0].Manager).To(Equal("argocd-controller"))
	g.Expect(got.ManagedFields[0].Time).To(Equal(&earlier))
	g.Expect(got.ManagedFields[1].Manager).To(Equal(audit.SCIMFieldManager))
	g.Expect(got.ManagedFields[1].Time).To(Equal(&now))
	g.Expect(string(got.ManagedFields[1].FieldsV1.GetRawBytes())).To(Equal(`{"f:spec":{}}`))
}

// The cached copy keeps a SCIM request's pending audit entry until the history holds it,
// and never the history itself: the trails know its shape.
func TestTransform_dropsPendingEntriesOnceRecordedAndTheHistory(t *testing.T) {
	g := NewWithT(t)
	e := scimv1.AuditEntry{Time: metav1.NewTime(time.Now()), Action: "Create", Result: scimv1.ResultApplied,
		Actor: scimv1.Actor{Kind: scimv1.ActorIdentityProvider, RequestID: "r1"}}
	u := &scimv1.StackUser{}
	u.ResourceVersion = "1"
	audit.AddPending(u, 20, e)
	trails := audit.NewTrails()
	out, _ := Transform(trails)(u.DeepCopy())
	g.Expect(out.(*scimv1.StackUser).Annotations).To(HaveKey(audit.AnnotationPendingAudit), "not in the history yet")
	u.Status.History = []scimv1.AuditEntry{e}
	u.ResourceVersion = "2"
	out, _ = Transform(trails)(u.DeepCopy())
	got := out.(*scimv1.StackUser)
	g.Expect(got.Annotations).NotTo(HaveKey(audit.AnnotationPendingAudit))
	g.Expect(got.Status.History).To(BeNil())
	trail, ok := trails.Of(got)
	g.Expect(ok).To(BeTrue())
	g.Expect(trail.Len()).To(Equal(1))
}
