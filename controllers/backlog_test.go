package controllers_test

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/sitesim"
)

// TestBacklog_showsWhatIsLeftAndWhenItIsDone: a bulk push shows in ScimSettings
// status.backlog with the rate the reconciler drains it at and when it should be done;
// the backlog is gone once every user is on the site.
func TestBacklog_showsWhatIsLeftAndWhenItIsDone(t *testing.T) {
	slow := fullSite
	slow.Latency = sitesim.Duration(30 * time.Millisecond)
	h := newUserHarness(t, harnessOptions{sim: slow, settingsReconciler: true})
	const n = 150
	for i := range n {
		h.createBenchUser(i)
	}
	g := NewWithT(t)
	var during scimv1.Backlog
	g.Eventually(func(g Gomega) {
		b := h.settings().Status.Backlog
		g.Expect(b).NotTo(BeNil())
		g.Expect(b.PerMinute).To(BeNumerically(">", 0))
		g.Expect(b.EstimatedCompletionTime).NotTo(BeNil())
		during = *b
	}).WithTimeout(30 * time.Second).WithPolling(50 * time.Millisecond).Should(Succeed())
	g.Expect(during.Users).To(BeNumerically("<=", n))
	// The estimate follows from the rate: users / perMinute, from about now.
	left := time.Duration(float64(during.Users) / float64(during.PerMinute) * float64(time.Minute))
	g.Expect(during.EstimatedCompletionTime.Time).To(BeTemporally("~", time.Now().Add(left), 10*time.Second))

	h.eventuallyAllSynced(n)
	g.Eventually(func(g Gomega) {
		s := h.settings()
		g.Expect(s.Status.Backlog).To(BeNil(), "no work left")
		g.Expect(s.Status.Users).NotTo(BeNil())
		g.Expect(s.Status.Users.Total).To(BeEquivalentTo(n))
	}).WithTimeout(30 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
}
