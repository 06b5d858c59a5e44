package controllers_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/controllers"
	"github.com/stackscim/stack-scim-operator/internal/sitesim"
)

// setSiteToken replaces the value of the harness's site token Secret.
func (h *userHarness) setSiteToken(g Gomega, value string) {
	var s corev1.Secret
	g.Expect(testEnv.Client.Get(context.Background(), types.NamespacedName{Namespace: h.ns, Name: "site-token"}, &s)).To(Succeed())
	s.Data = map[string][]byte{"token": []byte(value)}
	g.Expect(testEnv.Client.Update(context.Background(), &s)).To(Succeed())
}

// `kubectl create secret --from-file` keeps the file's trailing newline. The probe trimmed
// it and the StackUser reconciler did not: SiteReachable=True while every user failed.
func TestStackUserReconciler_siteTokenWithTrailingNewlineWorks(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	h := newUserHarness(t, harnessOptions{sim: sitesim.Config{CreateUsers: true}})
	h.setSiteToken(g, h.siteToken+"\n")
	h.createUser("newline", nil)
	u := h.eventuallySynced("newline")
	g.Expect(h.siteUser(g, u).Active).To(BeTrue())
}

// Deleting a StackUser whose site token is gone (a GitOps prune, a namespace deletion)
// used to release the finalizer without touching the site: the account stayed active.
// Now the finalizer stays, with a condition and a Warning Event, until the tenant is back.
func TestStackUserReconciler_offboardingWaitsForTheTenant(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	h := newUserHarness(t, harnessOptions{sim: sitesim.Config{CreateUsers: true}})
	h.createUser("leaver", nil)
	u := h.eventuallySynced("leaver")
	siteID := u.Status.SiteID

	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "site-token"}}
	g.Expect(testEnv.Client.Delete(context.Background(), secret)).To(Succeed())
	g.Expect(testEnv.Client.Delete(context.Background(), u)).To(Succeed())
	h.eventually("leaver", func(g Gomega, u *scimv1.StackUser) {
		g.Expect(u).To(haveCondition(scimv1.ConditionSynced, metav1.ConditionFalse, controllers.ReasonOffboardingBlocked))
		g.Expect(u.Finalizers).To(ContainElement(scimv1.Finalizer))
	})
	g.Eventually(func() []string { return eventReasons(g, h.ns) }).WithTimeout(20 * time.Second).
		Should(ContainElement(controllers.ReasonOffboardingBlocked))
	su, _ := h.sim.User(siteID)
	g.Expect(su.Active).To(BeTrue(), "nothing reached the site yet")

	// The token is back: the site user is deactivated and the StackUser goes.
	secret = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "site-token"},
		StringData: map[string]string{"token": h.siteToken}}
	g.Expect(testEnv.Client.Create(context.Background(), secret)).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(testEnv.Client.Get(context.Background(), client.ObjectKeyFromObject(u), &scimv1.StackUser{}))
	}).WithTimeout(30 * time.Second).Should(BeTrue())
	su, _ = h.sim.User(siteID)
	g.Expect(su.Active).To(BeFalse())
}

// The documented escape hatch: an admin who cannot bring the tenant back (its namespace
// is being deleted) releases the StackUser explicitly; a Warning Event says so.
func TestStackUserReconciler_skipOffboardingAnnotationReleases(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	h := newUserHarness(t, harnessOptions{sim: sitesim.Config{CreateUsers: true}})
	h.createUser("stuck", nil)
	u := h.eventuallySynced("stuck")
	g.Expect(testEnv.Client.Delete(context.Background(), &scimv1.ScimSettings{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: tenantName}})).To(Succeed())
	g.Expect(testEnv.Client.Delete(context.Background(), u)).To(Succeed())
	h.eventually("stuck", func(g Gomega, u *scimv1.StackUser) {
		g.Expect(u).To(haveCondition(scimv1.ConditionSynced, metav1.ConditionFalse, controllers.ReasonOffboardingBlocked))
	})
	h.updateUser("stuck", "kubectl-annotate", func(u *scimv1.StackUser) {
		if u.Annotations == nil {
			u.Annotations = map[string]string{}
		}
		u.Annotations[scimv1.SkipOffboardingAnnotation] = "true"
	})
	g.Eventually(func() bool {
		return apierrors.IsNotFound(testEnv.Client.Get(context.Background(), client.ObjectKeyFromObject(u), &scimv1.StackUser{}))
	}).WithTimeout(30 * time.Second).Should(BeTrue())
	g.Eventually(func() []string { return eventReasons(g, h.ns) }).WithTimeout(20 * time.Second).
		Should(ContainElement(controllers.ReasonOffboardingSkipped))
}

// Two StackUsers with one userName made with kubectl used to both link to the site
// account and fight over it. The older one wins; the other says why it is not synced.
func TestStackUserReconciler_duplicateUserNameOlderWins(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	h := newUserHarness(t, harnessOptions{sim: sitesim.Config{CreateUsers: true}})
	h.seed(sitesim.User{UserName: "twin@example.com", Active: true})
	h.createUserAs("alpha", "kubectl", func(s *scimv1.StackUserSpec) { s.UserName = "twin@example.com" })
	h.createUserAs("beta", "kubectl", func(s *scimv1.StackUserSpec) { s.UserName = "Twin@Example.com" })
	older := h.eventuallySynced("alpha")
	h.eventually("beta", func(g Gomega, u *scimv1.StackUser) {
		g.Expect(u).To(haveCondition(scimv1.ConditionSynced, metav1.ConditionFalse, controllers.ReasonDuplicateUserName))
		g.Expect(u).To(haveCondition(scimv1.ConditionReady, metav1.ConditionFalse, controllers.ReasonDuplicateUserName))
	})
	g.Expect(h.user(g, "beta").Status.History).To(BeEmpty(), "the younger one never wrote to the site")
	g.Expect(h.siteUser(g, older).UserName).To(Equal("twin@example.com"))
}
