package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/controllers"
	"github.com/stackscim/stack-scim-operator/internal/audit"
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

	h.eventually("rex", func(g Gomega, u *scimv1.StackUser) {
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
	// The drift is structured status, not only words in the condition.
	g.Expect(u.Status.Drift).To(ConsistOf(And(HaveField("Field", "active"), HaveField("SiteValue", "false"),
		HaveField("WantedValue", "true"), HaveField("Since", Not(BeZero())))))

	// Someone puts it back by hand: the drift clears.
	g.Expect(h.sim.Edit(u.Status.SiteID, func(su *sitesim.User) { su.Active = true })).To(Succeed())
	h.eventually("rex", func(g Gomega, u *scimv1.StackUser) {
		g.Expect(u).To(haveCondition(scimv1.ConditionDrifted, metav1.ConditionFalse, controllers.ReasonNoDrift))
		g.Expect(u).To(haveCondition(scimv1.ConditionReady, metav1.ConditionTrue, controllers.ReasonSynced))
		g.Expect(u.Status.Drift).To(BeEmpty())
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
	created := entries(u, controllers.ActionCreate, scimv1.ResultApplied)
	g.Expect(created).To(HaveLen(2))
	// The recreation is drift correction, not the IdP's last write (newest first).
	g.Expect(created[0].Actor.Kind).To(Equal(scimv1.ActorDriftCorrection))
	g.Expect(created[1].Actor.Kind).To(Equal(scimv1.ActorIdentityProvider))
}

// TestResync_siteUserRemovedByHandUnderReportIsNotRecreated: under driftPolicy Report a
// site account deleted by hand is reported (Drifted, one audit entry), never recreated.
// It used to be recreated, attributed to the IdP's last write.
func TestResync_siteUserRemovedByHandUnderReportIsNotRecreated(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	h := newUserHarness(t, harnessOptions{sim: sitesim.Config{CreateUsers: true}, settings: fastResync(scimv1.DriftReport)})
	h.createUser("ada", nil)
	u := h.eventuallySynced("ada")
	oldID := u.Status.SiteID
	h.sim.Reset()

	h.eventually("ada", func(g Gomega, u *scimv1.StackUser) {
		g.Expect(u).To(haveCondition(scimv1.ConditionDrifted, metav1.ConditionTrue, controllers.ReasonDriftReported))
		g.Expect(u).To(haveCondition(scimv1.ConditionReady, metav1.ConditionFalse, controllers.ReasonDriftReported))
	})
	first := h.settings().Status.LastResyncTime.Time
	g.Eventually(func() time.Time { return h.settings().Status.LastResyncTime.Time }).
		WithTimeout(15 * time.Second).Should(BeTemporally(">=", first.Add(2*time.Second)))
	g.Expect(h.sim.Users()).To(BeEmpty(), "Report does not create")
	u = h.user(g, "ada")
	g.Expect(u.Status.SiteID).To(Equal(oldID))
	reported := entries(u, controllers.ActionDrift, scimv1.ResultReported)
	g.Expect(reported).To(HaveLen(1))
	g.Expect(reported[0].Changes).To(Equal([]scimv1.FieldChange{{Field: "siteId", Old: oldID}}))
	g.Expect(entries(u, controllers.ActionCreate, scimv1.ResultApplied)).To(HaveLen(1))
}

// TestResync_failingUserDoesNotBypassReport: a user whose reconcile keeps failing (the
// site ignores its role write) has an old observedGeneration; a hand edit on the site
// must still be reported, not enforced, and a deleted account not recreated.
func TestResync_failingUserDoesNotBypassReport(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	h := newUserHarness(t, harnessOptions{sim: sitesim.Config{CreateUsers: true}, settings: fastResync(scimv1.DriftReport)})
	h.createUser("bo", func(s *scimv1.StackUserSpec) { s.Title = "Engineer" })
	h.eventuallySynced("bo")
	h.updateUser("bo", audit.SCIMFieldManager, func(u *scimv1.StackUser) { u.Spec.Role = role(scimv1.RoleModerator) })
	u := h.eventually("bo", func(g Gomega, u *scimv1.StackUser) {
		g.Expect(u).To(haveCondition(scimv1.ConditionSynced, metav1.ConditionFalse, controllers.ReasonRoleWriteIgnored))
	})
	g.Expect(u.Status.ObservedGeneration).NotTo(Equal(u.Generation))

	g.Expect(h.sim.Edit(u.Status.SiteID, func(su *sitesim.User) { su.Title = "By hand" })).To(Succeed())
	h.eventually("bo", func(g Gomega, u *scimv1.StackUser) {
		g.Expect(u).To(haveCondition(scimv1.ConditionDrifted, metav1.ConditionTrue, controllers.ReasonDriftReported))
	})
	g.Consistently(func(g Gomega) string { return h.siteUser(g, h.user(g, "bo")).Title }).
		WithTimeout(3 * time.Second).WithPolling(200 * time.Millisecond).Should(Equal("By hand"))

	h.sim.Reset()
	h.eventually("bo", func(g Gomega, u *scimv1.StackUser) {
		c := meta.FindStatusCondition(u.Status.Conditions, scimv1.ConditionDrifted)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Message).To(ContainSubstring("deleted by hand"))
	})
	g.Consistently(func() []sitesim.User { return h.sim.Users() }).
		WithTimeout(3 * time.Second).WithPolling(200 * time.Millisecond).Should(BeEmpty())
}

// TestResync_renamedUserIsRenamedOnTheSiteAndDriftIsPutBack: a userName change renames
// the same site account (no second account), audited; a rename by hand on the site is
// drift and is put back under Enforce.
func TestResync_renamedUserIsRenamedOnTheSiteAndDriftIsPutBack(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	h := newUserHarness(t, harnessOptions{sim: sitesim.Config{CreateUsers: true}, settings: fastResync(scimv1.DriftEnforce)})
	h.createUser("cy", nil)
	u := h.eventuallySynced("cy")
	id := u.Status.SiteID
	h.updateUser("cy", audit.SCIMFieldManager, func(u *scimv1.StackUser) { u.Spec.UserName = "cy.new@example.com" })
	u = h.eventually("cy", func(g Gomega, u *scimv1.StackUser) {
		g.Expect(u.Status.ObservedGeneration).To(Equal(u.Generation))
		g.Expect(h.siteUser(g, u).UserName).To(Equal("cy.new@example.com"))
	})
	g.Expect(u.Status.SiteID).To(Equal(id), "the same account")
	g.Expect(h.sim.Users()).To(HaveLen(1))
	upd := entries(u, controllers.ActionUpdate, scimv1.ResultApplied)
	g.Expect(upd).NotTo(BeEmpty())
	g.Expect(upd[0].Changes).To(ContainElement(scimv1.FieldChange{Field: "userName", Old: "cy@example.com", New: "cy.new@example.com"}))

	g.Expect(h.sim.Edit(id, func(su *sitesim.User) { su.UserName = "hand@example.com" })).To(Succeed())
	u = h.eventually("cy", func(g Gomega, u *scimv1.StackUser) {
		g.Expect(h.siteUser(g, u).UserName).To(Equal("cy.new@example.com"))
		g.Expect(u).To(haveCondition(scimv1.ConditionDrifted, metav1.ConditionFalse, controllers.ReasonDriftCorrected))
	})
	var fixed []scimv1.FieldChange
	for _, e := range u.Status.History {
		if e.Actor.Kind == scimv1.ActorDriftCorrection {
			fixed = append(fixed, e.Changes...)
		}
	}
	g.Expect(fixed).To(ContainElement(scimv1.FieldChange{Field: "userName", Old: "hand@example.com", New: "cy.new@example.com"}))
}

// benchUsers is how many users TestResync_convergedUsersCostOnlyTheListPages provisions.
const benchUsers = 300

// benchRoles is the userType cycle of the benchmark's users.
var benchRoles = []scimv1.Role{scimv1.RoleRegistered, scimv1.RoleModerator, scimv1.RoleAdmin}

// createBenchUser creates a StackUser shaped like the benchmark's (internal/bench): what
// the SCIM server stores for userName, externalId, active, name{givenName,familyName},
// emails[{value,primary,type work}] and userType, with no displayName, title or department.
func (h *userHarness) createBenchUser(i int) {
	name := fmt.Sprintf("e2e%06d", i)
	ext := fmt.Sprintf("e2e-%d", i)
	h.createUser(name, func(s *scimv1.StackUserSpec) {
		s.UserName = name + "@example.com"
		s.ExternalID = ext
		s.DisplayName = ""
		s.Active = ptr.To(true)
		s.Name = &scimv1.Name{GivenName: "Bench", FamilyName: ext}
		s.Emails = []scimv1.MultiValuedAttribute{{Value: name + "@example.com", Primary: true, Type: "work"}}
		s.Role = role(benchRoles[i%len(benchRoles)])
	})
}

// eventuallyAllSynced waits until n StackUsers of the harness are Synced at their generation.
func (h *userHarness) eventuallyAllSynced(n int) {
	h.t.Helper()
	NewWithT(h.t).Eventually(func(g Gomega) {
		var list scimv1.StackUserList
		g.Expect(testEnv.Client.List(context.Background(), &list, client.InNamespace(h.ns))).To(Succeed())
		g.Expect(list.Items).To(HaveLen(n))
		synced := 0
		for i := range list.Items {
			u := &list.Items[i]
			c := meta.FindStatusCondition(u.Status.Conditions, scimv1.ConditionSynced)
			if c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == u.Generation && u.Status.SiteID != "" {
				synced++
			}
		}
		g.Expect(synced).To(Equal(n), "Synced users")
	}).WithTimeout(3 * time.Minute).WithPolling(500 * time.Millisecond).Should(Succeed())
}

// provisionBenchUsers provisions benchUsers users shaped like the benchmark's on a site
// with both promotion switches on, and waits until every one is Synced.
func provisionBenchUsers(t *testing.T, period time.Duration) *userHarness {
	h := newUserHarness(t, harnessOptions{
		sim: sitesim.Config{CreateUsers: true, AllowModeratorPromotion: true, AllowAdminPromotion: true},
		settings: func(s *scimv1.ScimSettings) {
			s.Spec.AllowModeratorPromotion, s.Spec.AllowAdminPromotion = true, true
			s.Spec.Site.RequestsPerSecond, s.Spec.Site.Burst = 1000, 1000
			s.Spec.ResyncPeriod = &metav1.Duration{Duration: period}
		},
	})
	for i := range benchUsers {
		h.createBenchUser(i)
	}
	h.eventuallyAllSynced(benchUsers)
	return h
}

// resyncSummaries returns the "resync done" log lines written after offset.
func (h *userHarness) resyncSummaries(offset int) []string {
	var out []string
	for _, l := range strings.Split(h.logs.String()[offset:], "\n") {
		if strings.Contains(l, `"msg"="resync done"`) {
			out = append(out, l)
		}
	}
	return out
}

// waitResync waits for the next lastResyncTime.
func (h *userHarness) waitResync(g Gomega) {
	var last time.Time
	if t := h.settings().Status.LastResyncTime; t != nil {
		last = t.Time
	}
	g.Eventually(func() time.Time {
		if t := h.settings().Status.LastResyncTime; t != nil {
			return t.Time
		}
		return time.Time{}
	}).WithTimeout(20 * time.Second).Should(BeTemporally(">", last))
}

// Users that are all in line with the site (the benchmark's users, converged) cost a
// resync its list pages only: no user is handed to the StackUser reconciler, so no per-user
// GET. That holds for the resync a resyncPeriod change starts (the benchmark's trigger: a
// field only the resync reads must not send every user through the reconciler) and for
// the periodic one after it.
func TestResync_convergedUsersCostOnlyTheListPages(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	h := provisionBenchUsers(t, time.Hour)
	pages := int64((benchUsers + 99) / 100)

	offset := len(h.logs.String())
	before := h.sim.Requests()
	h.updateSettings(func(s *scimv1.ScimSettings) { s.Spec.ResyncPeriod = &metav1.Duration{Duration: 2 * time.Second} })
	h.waitResync(g)
	// Reconciles the change could have queued would reach the site within moments.
	g.Consistently(func() int64 { return h.sim.Requests()[sitesim.CountGetUser] - before[sitesim.CountGetUser] }).
		WithTimeout(2 * time.Second).WithPolling(100 * time.Millisecond).Should(BeZero())

	// The next, periodic resync (the list count below shows it ran).
	h.waitResync(g)
	after := h.sim.Requests()
	delta := func(k string) int64 { return after[k] - before[k] }

	summaries := h.resyncSummaries(offset)
	g.Expect(summaries).NotTo(BeEmpty())
	for _, l := range summaries {
		g.Expect(l).To(ContainSubstring(fmt.Sprintf(`"siteUsers"=%d`, benchUsers)))
		g.Expect(l).To(ContainSubstring(`"handedOver"=0`), "converged users are not handed over")
	}
	g.Expect(delta(sitesim.CountListUsers)).To(BeNumerically(">=", 2*pages))
	g.Expect(delta(sitesim.CountListUsers)).To(BeNumerically("<=", 3*pages), "at most three resyncs in the window")
	g.Expect(delta(sitesim.CountGetUser)).To(BeZero(), "no user handed over, so no per-user GET")
	g.Expect(delta(sitesim.CountTotal)).To(Equal(delta(sitesim.CountListUsers)), "only list requests: %v -> %v", before, after)
}
