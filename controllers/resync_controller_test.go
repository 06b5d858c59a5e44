package controllers_test

import (
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/controllers"
	"github.com/stackscim/stack-scim-operator/internal/sitesim"
)

func fastResync(policy scimv1.DriftPolicy) func(*scimv1.ScimSettings) {
	return func(s *scimv1.ScimSettings) {
		s.Spec.ResyncPeriod = &metav1.Duration{Duration: time.Second}
		s.Spec.DriftPolicy = policy
		s.Spec.AllowModeratorPromotion = true
	}
}

func TestResync_driftIsEnforced(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	h := newUserHarness(t, harnessOptions{
		sim:      sitesim.Config{CreateUsers: true, AllowModeratorPromotion: true},
		settings: fastResync(scimv1.DriftEnforce),
	})
	h.createUser("eve", func(s *scimv1.StackUserSpec) { s.Role = role(scimv1.RoleModerator); s.Title = "Engineer" })
	u := h.eventuallySynced("eve")

	// A site admin changes the user by hand.
	g.Expect(h.sim.Edit(u.Status.SiteID, func(su *sitesim.User) {
		su.Active, su.Role, su.Title = false, sitesim.RoleRegistered, "Hacked"
	})).To(Succeed())

	u = h.eventually("eve", func(g Gomega, u *scimv1.StackUser) {
		su := h.siteUser(g, u)
		g.Expect(su.Active).To(BeTrue())
		g.Expect(su.Role).To(Equal(sitesim.RoleModerator))
		g.Expect(su.Title).To(Equal("Engineer"))
		g.Expect(u).To(haveCondition(scimv1.ConditionDrifted, metav1.ConditionFalse, controllers.ReasonDriftCorrected))
	})
	var corrected []scimv1.AuditEntry
	for _, e := range u.Status.History {
		if e.Actor.Kind == scimv1.ActorDriftCorrection && e.Result == scimv1.ResultApplied {
			corrected = append(corrected, e)
		}
	}
	g.Expect(corrected).NotTo(BeEmpty())
	var fields []scimv1.FieldChange
	for _, e := range corrected {
		fields = append(fields, e.Changes...)
	}
	g.Expect(fields).To(ContainElements(
		scimv1.FieldChange{Field: "active", Old: "false", New: "true"},
		scimv1.FieldChange{Field: "role", Old: "Registered", New: "Moderator"},
		scimv1.FieldChange{Field: "title", Old: "Hacked", New: "Engineer"},
	))
	g.Expect(h.settings().Status.LastResyncTime).NotTo(BeNil())
}

func TestResync_driftIsReportedOnce(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	h := newUserHarness(t, harnessOptions{sim: sitesim.Config{CreateUsers: true}, settings: fastResync(scimv1.DriftReport)})
	h.createUser("rex", nil)
	u := h.eventuallySynced("rex")
	g.Expect(h.sim.Edit(u.Status.SiteID, func(su *sitesim.User) { su.Active = false })).To(Succeed())

	u = h.eventually("rex", func(g Gomega, u *scimv1.StackUser) {
		g.Expect(u).To(haveCondition(scimv1.ConditionDrifted, metav1.ConditionTrue, controllers.ReasonDriftReported))
		g.Expect(u).To(haveCondition(scimv1.ConditionReady, metav1.ConditionFalse, controllers.ReasonDriftReported))
	})
	// Let several resyncs pass: the drift is neither corrected nor reported again.
	first := h.settings().Status.LastResyncTime.Time
	g.Eventually(func() time.Time { return h.settings().Status.LastResyncTime.Time }).
		WithTimeout(15 * time.Second).Should(BeTemporally(">=", first.Add(2*time.Second)))
	u = h.user(g, "rex")
	reported := entries(u, controllers.ActionDrift, scimv1.ResultReported)
	g.Expect(reported).To(HaveLen(1))
	g.Expect(reported[0].Changes).To(Equal([]scimv1.FieldChange{{Field: "active", Old: "true", New: "false"}}))
	g.Expect(h.siteUser(g, u).Active).To(BeFalse(), "Report does not touch the site")
	g.Expect(*u.Status.Site.Active).To(BeFalse(), "status.site shows what the site has")

	// Someone puts it back by hand: the drift clears.
	g.Expect(h.sim.Edit(u.Status.SiteID, func(su *sitesim.User) { su.Active = true })).To(Succeed())
	h.eventually("rex", func(g Gomega, u *scimv1.StackUser) {
		g.Expect(u).To(haveCondition(scimv1.ConditionDrifted, metav1.ConditionFalse, controllers.ReasonNoDrift))
		g.Expect(u).To(haveCondition(scimv1.ConditionReady, metav1.ConditionTrue, controllers.ReasonSynced))
	})
}

func TestResync_countsSiteOnlyUsersAndReadsPages(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	h := newUserHarness(t, harnessOptions{sim: sitesim.Config{CreateUsers: true}, settings: fastResync(scimv1.DriftEnforce)})
	for i := range 150 {
		h.seed(sitesim.User{UserName: fmt.Sprintf("site-only-%d@example.com", i), Active: i%3 != 0})
	}
	linked := h.seed(sitesim.User{UserName: "kim@example.com", Active: true})
	h.createUser("kim", nil)
	u := h.eventuallySynced("kim")
	g.Expect(u.Status.SiteID).To(Equal(linked.ID))

	g.Eventually(func(g Gomega) {
		s := h.settings()
		g.Expect(s.Status.Users).NotTo(BeNil())
		g.Expect(s.Status.Users.SiteOnly).To(BeEquivalentTo(150))
		g.Expect(s.Status.LastResyncTime).NotTo(BeNil())
	}).WithTimeout(20 * time.Second).Should(Succeed())
	// Measure one resync that starts after the user was linked.
	waitResync := func() {
		last := h.settings().Status.LastResyncTime.Time
		g.Eventually(func() time.Time { return h.settings().Status.LastResyncTime.Time }).
			WithTimeout(10 * time.Second).Should(BeTemporally(">", last))
	}
	waitResync()
	before := h.sim.Requests()
	waitResync()
	after := h.sim.Requests()
	// 151 users: two pages per resync, no per-user GET, and site-only users never written.
	g.Expect(after[sitesim.CountGetUser] - before[sitesim.CountGetUser]).To(BeZero())
	g.Expect(after[sitesim.CountListUsers] - before[sitesim.CountListUsers]).To(BeNumerically("<=", 4))
	g.Expect(after[sitesim.CountPatchUser] - before[sitesim.CountPatchUser]).To(BeZero())
	g.Expect(after[sitesim.CountPutUser] + after[sitesim.CountDeleteUser]).To(BeZero())
}

func TestResync_siteUserRemovedByHandIsRecreated(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	h := newUserHarness(t, harnessOptions{sim: sitesim.Config{CreateUsers: true}, settings: fastResync(scimv1.DriftEnforce)})
	h.createUser("zed", nil)
	u := h.eventuallySynced("zed")
	oldID := u.Status.SiteID
	g.Expect(h.sim.Users()).To(HaveLen(1))
	// Removed on the site behind the operator's back.
	h.sim.Reset()

	u = h.eventually("zed", func(g Gomega, u *scimv1.StackUser) {
		g.Expect(u.Status.SiteID).NotTo(BeEmpty())
		g.Expect(u.Status.SiteID).NotTo(Equal(oldID))
		g.Expect(u).To(haveCondition(scimv1.ConditionSynced, metav1.ConditionTrue, controllers.ReasonSynced))
	})
	g.Expect(h.sim.Users()).To(HaveLen(1))
	g.Expect(entries(u, controllers.ActionLink, scimv1.ResultFailed)).To(HaveLen(1))
	g.Expect(entries(u, controllers.ActionCreate, scimv1.ResultApplied)).To(HaveLen(2))
}
