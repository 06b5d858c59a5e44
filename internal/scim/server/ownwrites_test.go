package server

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/scim/userview"
)

func viewUser(name, rv string) *scimv1.StackUser {
	return &scimv1.StackUser{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: "uid-" + types.UID(name), ResourceVersion: rv},
		Spec:       scimv1.StackUserSpec{SettingsRef: scimv1.SettingsReference{Name: "t"}, UserName: name},
	}
}

// TestOwnWrites_listWaitsForTheInformer: a list right after a write waits until the
// informer-fed view shows the write (its resourceVersion, or its deletion), and no
// longer; writes in other namespaces do not hold it up.
func TestOwnWrites_listWaitsForTheInformer(t *testing.T) {
	g := NewWithT(t)
	view := userview.New()
	var o ownWrites

	// A create the view has not seen.
	o.record(view, viewUser("a", "10"), false)
	done := make(chan struct{})
	go func() { o.await(context.Background(), view, "ns"); close(done) }()
	g.Consistently(done).WithTimeout(200 * time.Millisecond).ShouldNot(BeClosed())
	view.OnAdd(viewUser("a", "9"), false) // an older version: still waiting
	g.Consistently(done).WithTimeout(100 * time.Millisecond).ShouldNot(BeClosed())
	view.OnUpdate(viewUser("a", "9"), viewUser("a", "10"))
	g.Eventually(done).WithTimeout(time.Second).Should(BeClosed())

	// A delete: shown once the view drops the user.
	o.record(view, viewUser("a", "10"), true)
	done = make(chan struct{})
	go func() { o.await(context.Background(), view, "ns"); close(done) }()
	g.Consistently(done).WithTimeout(100 * time.Millisecond).ShouldNot(BeClosed())
	view.OnDelete(viewUser("a", "11"))
	g.Eventually(done).WithTimeout(time.Second).Should(BeClosed())

	// Another namespace's pending write does not delay this one's lists.
	other := viewUser("b", "20")
	other.Namespace = "elsewhere"
	o.record(view, other, false)
	start := time.Now()
	o.await(context.Background(), view, "ns")
	g.Expect(time.Since(start)).To(BeNumerically("<", 100*time.Millisecond))
}

func TestAtLeast(t *testing.T) {
	g := NewWithT(t)
	g.Expect(atLeast("10", "9")).To(BeTrue())
	g.Expect(atLeast("9", "10")).To(BeFalse())
	g.Expect(atLeast("x", "x")).To(BeTrue())
	g.Expect(atLeast("x", "9")).To(BeFalse())
}
