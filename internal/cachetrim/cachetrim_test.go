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
	u := &scimv1.StackUser{ObjectMeta: metav1.ObjectMeta{
		Annotations: map[string]string{lastApplied: `{"a":"big copy"}`, "scim.stackscim.io/last-scim-request": `{"requestId":"r1"}`},
		ManagedFields: []metav1.ManagedFieldsEntry{
			{Manager: "stack-scim-operator-scim", Operation: metav1.ManagedFieldsOperationUpdate, Time: &now,
				FieldsV1: metav1.NewFieldsV1(`{"f:metadata":{"f:labels":{}},"f:spec":{"f:userName":{},"f:emails":{}}}`)},
			{Manager: "stack-scim-operator", Operation: metav1.ManagedFieldsOperationUpdate, Subresource: "status", Time: &now,
				FieldsV1: metav1.NewFieldsV1(`{"f:status":{"f:history":{}}}`)},
		},
	}}
	out, err := Transform()(u)
	g.Expect(err).NotTo(HaveOccurred())
	got := out.(*scimv1.StackUser)
	g.Expect(got.Annotations).To(Equal(map[string]string{"scim.stackscim.io/last-scim-request": `{"requestId":"r1"}`}))
	g.Expect(got.ManagedFields).To(HaveLen(2))
	g.Expect(got.ManagedFields[0].Manager).To(Equal("stack-scim-operator-scim"))
	g.Expect(got.ManagedFields[0].Time).To(Equal(&now))
	g.Expect(string(got.ManagedFields[0].FieldsV1.GetRawBytes())).To(Equal(`{"f:spec":{}}`))
	g.Expect(got.ManagedFields[1].Subresource).To(Equal("status"))
	g.Expect(got.ManagedFields[1].FieldsV1).To(BeNil())
}

// The cached copy keeps a SCIM request's pending audit entry until the history holds it.
func TestTransform_dropsPendingEntriesOnceRecorded(t *testing.T) {
	g := NewWithT(t)
	e := scimv1.AuditEntry{Time: metav1.NewTime(time.Now()), Action: "Create", Result: scimv1.ResultApplied,
		Actor: scimv1.Actor{Kind: scimv1.ActorIdentityProvider, RequestID: "r1"}}
	u := &scimv1.StackUser{}
	audit.AddPending(u, 20, e)
	out, _ := Transform()(u.DeepCopy())
	g.Expect(out.(*scimv1.StackUser).Annotations).To(HaveKey(audit.AnnotationPendingAudit), "not in the history yet")
	u.Status.History = []scimv1.AuditEntry{e}
	out, _ = Transform()(u.DeepCopy())
	g.Expect(out.(*scimv1.StackUser).Annotations).NotTo(HaveKey(audit.AnnotationPendingAudit))
}
