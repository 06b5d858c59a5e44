package audit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/audit"
)

// bigEntry is an entry of 64 changes of 1 KiB each way: about 130 KiB of JSON.
func bigEntry(action string) scimv1.AuditEntry {
	e := entry(action)
	for i := range 64 {
		e.Changes = append(e.Changes, scimv1.FieldChange{Field: fmt.Sprintf("f%d", i),
			Old: strings.Repeat("o", 1024), New: strings.Repeat("n", 1024)})
	}
	return e
}

// With historyLimit 200, large changes used to grow a StackUser past etcd's 1.5 MiB
// object limit; from then on every status write failed. The history is bounded in bytes
// too, newest first.
func TestRecorder_historyIsBoundedInBytes(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	u := &scimv1.StackUser{
		ObjectMeta: metav1.ObjectMeta{Namespace: env.Namespace(t), Name: "big"},
		Spec:       scimv1.StackUserSpec{SettingsRef: scimv1.SettingsReference{Name: "okta"}, UserName: "big"},
	}
	g.Expect(env.Client.Create(ctx, u)).To(Succeed())
	rec := &audit.Recorder{Client: env.Client, Log: logr.Discard()}
	for i := range 20 {
		g.Expect(rec.Append(ctx, u, 200, bigEntry(fmt.Sprintf("a%d", i)))).To(Succeed(), "append %d", i)
	}
	got := &scimv1.StackUser{}
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(u), got)).To(Succeed())
	g.Expect(got.Status.History).NotTo(BeEmpty())
	g.Expect(got.Status.History[0].Action).To(Equal("a19"), "the newest entry is kept")
	size, err := json.Marshal(got.Status.History)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(len(size)).To(BeNumerically("<=", audit.MaxHistoryBytes+len(size)/len(got.Status.History)))
}

func TestPrepend_boundedInBytes(t *testing.T) {
	g := NewWithT(t)
	var h []scimv1.AuditEntry
	for i := range 10 {
		h = audit.Prepend(h, 200, bigEntry(fmt.Sprintf("a%d", i)))
	}
	g.Expect(h[0].Action).To(Equal("a9"))
	g.Expect(len(h)).To(BeNumerically("<", 3), "two such entries fill the byte budget")
}
