package controllers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/controllers"
	"github.com/stackscim/stack-scim-operator/internal/audit"
	"github.com/stackscim/stack-scim-operator/internal/sitesim"
)

// siteWrites counts the requests that change the simulated site.
func siteWrites(sim *sitesim.Sim) int64 {
	r := sim.Requests()
	return r[sitesim.CountCreateUser] + r[sitesim.CountPatchUser] + r[sitesim.CountPutUser] + r[sitesim.CountDeleteUser]
}

func planOf(u *scimv1.StackUser) []string {
	var out []string
	for _, p := range u.Status.PlannedChanges {
		s := string(p.Action)
		if p.Action != scimv1.PlanLink && p.Action != scimv1.PlanCreate {
			s += " " + p.Field + " " + p.Old + "→" + p.New
		}
		out = append(out, s)
	}
	return out
}

// fullSite is a simulated site that creates users and applies role writes.
var fullSite = sitesim.Config{CreateUsers: true, AllowModeratorPromotion: true, AllowAdminPromotion: true}

// existing is a site account as createUser would describe it (the userName matches, the
// IdP's externalId is not on the site yet), with u's extra fields.
func existing(name string, u sitesim.User) sitesim.User {
	u.UserName, u.DisplayName, u.Email, u.Active = name+"@example.com", "User "+name, name+"@example.com", true
	return u
}

// An admin onboards a site that already has accounts: Observe plans every change and
// writes nothing; Enforce then applies exactly that plan, linking (not duplicating) the
// existing accounts, and the audit trail says it was the plan.
func TestObserve_plansWithoutWritingAndEnforceAppliesThePlan(t *testing.T) {
	h := newUserHarness(t, harnessOptions{settingsReconciler: true, sim: fullSite, settings: func(s *scimv1.ScimSettings) {
		s.Spec.Mode = scimv1.ModeObserve
		s.Spec.AllowAdminPromotion = true
	}})
	alice := h.seed(existing("alice", sitesim.User{Title: "Engineer"}))
	bob := h.seed(existing("bob", sitesim.User{}))
	carol := h.seed(existing("carol", sitesim.User{Role: sitesim.RoleAdmin}))
	h.seed(sitesim.User{UserName: "zed@example.com", Active: true}) // no StackUser describes it

	h.createUser("alice", func(s *scimv1.StackUserSpec) { s.Title = "Senior Engineer" })
	h.createUser("bob", func(s *scimv1.StackUserSpec) { s.Active = ptr.To(false) })
	h.createUser("carol", func(s *scimv1.StackUserSpec) { s.Role = role(scimv1.RoleRegistered) })
	h.createUser("dave", nil)

	want := map[string][]string{
		"alice": {"Link", "Update title Engineer→Senior Engineer", "Update externalId →okta-alice"},
		"bob":   {"Link", "Deactivate active true→false", "Update externalId →okta-bob"},
		"carol": {"Link", "Demote role Admin→Registered", "Update externalId →okta-carol"},
		"dave":  {"Create"},
	}
	for name, plan := range want {
		u := h.eventually(name, func(g Gomega, u *scimv1.StackUser) {
			g.Expect(u).To(haveCondition(scimv1.ConditionSynced, metav1.ConditionFalse, controllers.ReasonObserveOnly))
			g.Expect(planOf(u)).To(Equal(plan))
		})
		if u.Status.SiteID != "" {
			t.Errorf("%s: Observe mode linked site account %s; linking waits for Enforce", name, u.Status.SiteID)
		}
	}
	NewWithT(t).Eventually(func(g Gomega) {
		p := h.settings().Status.Plan
		g.Expect(p).NotTo(BeNil())
		g.Expect(*p).To(Equal(scimv1.PlanSummary{Users: 4, Link: 3, Create: 1, Update: 4, Deactivate: 1, Demote: 1}))
	}).WithTimeout(30 * time.Second).Should(Succeed())
	if n := siteWrites(h.sim); n != 0 {
		t.Fatalf("Observe mode sent %d writes to the site: %v", n, h.sim.Requests())
	}

	h.updateSettings(func(s *scimv1.ScimSettings) { s.Spec.Mode = scimv1.ModeEnforce })
	ids := map[string]string{"alice": alice.ID, "bob": bob.ID, "carol": carol.ID}
	for name := range want {
		u := h.eventuallySynced(name)
		if id, ok := ids[name]; ok && u.Status.SiteID != id {
			t.Errorf("%s linked to %s, want the existing account %s", name, u.Status.SiteID, id)
		}
		if len(u.Status.PlannedChanges) != 0 {
			t.Errorf("%s keeps a plan after Enforce applied it: %v", name, planOf(u))
		}
		noted := false
		for _, e := range u.Status.History {
			if e.Result == scimv1.ResultApplied && strings.Contains(e.Message, "as planned in Observe mode") && e.Action != controllers.ActionLink {
				noted = true
				// The IdP request asked for it; Observe only delayed it.
				if e.Actor.Kind != scimv1.ActorIdentityProvider {
					t.Errorf("%s: %s applied from the plan is attributed to %+v, want the IdP request", name, e.Action, e.Actor)
				}
			}
		}
		if !noted {
			t.Errorf("%s: no applied audit entry says it carried out the Observe plan: %+v", name, u.Status.History)
		}
	}
	g := NewWithT(t)
	g.Expect(h.sim.Users()).To(HaveLen(5), "4 StackUsers and the site-only account, nothing duplicated")
	su, _ := h.sim.User(alice.ID)
	g.Expect(su.Title).To(Equal("Senior Engineer"))
	su, _ = h.sim.User(bob.ID)
	g.Expect(su.Active).To(BeFalse())
	su, _ = h.sim.User(carol.ID)
	g.Expect(su.Role).To(Equal(sitesim.RoleRegistered))
	g.Eventually(func(g Gomega) {
		p := h.settings().Status.Plan
		g.Expect(p).NotTo(BeNil())
		g.Expect(p.Users).To(BeZero())
	}).WithTimeout(30 * time.Second).Should(Succeed())
}

// A StackUser deleted in Observe mode is not offboarded behind the admin's back, nor
// forgotten: the finalizer waits with the planned deactivation until Enforce.
func TestObserve_deletedUserWaitsForEnforce(t *testing.T) {
	h := newUserHarness(t, harnessOptions{sim: fullSite})
	h.createUser("erin", nil)
	u := h.eventuallySynced("erin")
	h.updateSettings(func(s *scimv1.ScimSettings) { s.Spec.Mode = scimv1.ModeObserve })
	writes := siteWrites(h.sim)
	if err := testEnv.Client.Delete(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	h.eventually("erin", func(g Gomega, u *scimv1.StackUser) {
		g.Expect(u).To(haveCondition(scimv1.ConditionSynced, metav1.ConditionFalse, controllers.ReasonObserveOnly))
		g.Expect(planOf(u)).To(Equal([]string{"Deactivate active true→false"}))
	})
	if n := siteWrites(h.sim) - writes; n != 0 {
		t.Fatalf("Observe mode wrote to the site %d times", n)
	}
	h.updateSettings(func(s *scimv1.ScimSettings) { s.Spec.Mode = scimv1.ModeEnforce })
	NewWithT(t).Eventually(func(g Gomega) {
		su, ok := h.sim.User(u.Status.SiteID)
		g.Expect(ok).To(BeTrue())
		g.Expect(su.Active).To(BeFalse())
		err := testEnv.Client.Get(context.Background(), types.NamespacedName{Namespace: h.ns, Name: "erin"}, &scimv1.StackUser{})
		g.Expect(err).To(HaveOccurred(), "the finalizer is released once the site user is deactivated")
	}).WithTimeout(45 * time.Second).Should(Succeed())
}

// createSynced creates StackUsers and waits until each is on the site; it returns their
// site ids.
func (h *userHarness) createSynced(names ...string) map[string]string {
	for _, n := range names {
		h.createUser(n, nil)
	}
	ids := map[string]string{}
	for _, n := range names {
		ids[n] = h.eventuallySynced(n).Status.SiteID
	}
	return ids
}

// heldUsers lists the StackUsers the brake holds.
func (h *userHarness) heldUsers(g Gomega, names ...string) []string {
	var held []string
	for _, n := range names {
		u := h.user(g, n)
		if u.Status.HeldSince != nil {
			g.Expect(u).To(haveCondition(scimv1.ConditionSynced, metav1.ConditionFalse, controllers.ReasonChangeHeld))
			held = append(held, n)
		}
	}
	return held
}

func (h *userHarness) inactiveOnSite(g Gomega, names ...string) []string {
	var out []string
	for _, n := range names {
		u := h.user(g, n)
		if su, ok := h.sim.User(u.Status.SiteID); ok && !su.Active {
			out = append(out, n)
		}
	}
	return out
}

// With the brake at 2 an hour, a 4-user deprovisioning sends 2 and holds 2, in order; the
// hold survives a manager restart; the release-held annotation sends the rest.
func TestBrake_holdsPastTheCapSurvivesRestartAndReleases(t *testing.T) {
	h := newUserHarness(t, harnessOptions{settingsReconciler: true, sim: fullSite, settings: func(s *scimv1.ScimSettings) {
		s.Spec.Safety = &scimv1.SafetySpec{MaxDeactivationsPerHour: 2}
	}})
	names := []string{"u1", "u2", "u3", "u4"}
	h.createSynced(names...)
	for _, n := range names {
		h.updateUser(n, "okta", func(u *scimv1.StackUser) { u.Spec.Active = ptr.To(false) })
		// One at a time, as an IdP deprovisions: sent or held before the next one.
		h.eventually(n, func(g Gomega, u *scimv1.StackUser) {
			c := meta.FindStatusCondition(u.Status.Conditions, scimv1.ConditionSynced)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.ObservedGeneration).To(Equal(u.Generation))
		})
	}
	g := NewWithT(t)
	g.Eventually(func(g Gomega) {
		g.Expect(h.inactiveOnSite(g, names...)).To(Equal([]string{"u1", "u2"}))
		g.Expect(h.heldUsers(g, names...)).To(Equal([]string{"u3", "u4"}))
	}).WithTimeout(45 * time.Second).Should(Succeed())
	g.Eventually(func(g Gomega) {
		s := h.settings()
		c := meta.FindStatusCondition(s.Status.Conditions, scimv1.ConditionChangesHeld)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(s.Status.Plan).NotTo(BeNil())
		g.Expect(s.Status.Plan.Held).To(Equal(int32(2)))
		g.Expect(s.Status.Plan.HeldUsers).To(Equal([]string{"u3@example.com", "u4@example.com"}))
		g.Expect(s.Status.Safety).NotTo(BeNil())
		sent := int32(0)
		for _, c := range s.Status.Safety.Sent {
			sent += c.Count
		}
		g.Expect(sent).To(Equal(int32(2)))
	}).WithTimeout(30 * time.Second).Should(Succeed())
	u3 := h.user(g, "u3")
	g.Expect(planOf(u3)).To(Equal([]string{"Deactivate active true→false"}))
	g.Expect(entries(u3, controllers.ActionDeactivate, scimv1.ResultBlocked)).To(HaveLen(1))

	// A new manager process counts the same hour: nothing more goes out.
	h.restartManager()
	h.updateUser("u4", "okta", func(u *scimv1.StackUser) { u.Spec.DisplayName = "Held User Four" })
	g.Eventually(func(g Gomega) {
		su, _ := h.sim.User(h.user(g, "u4").Status.SiteID)
		g.Expect(su.DisplayName).To(Equal("Held User Four"), "other changes of a held user still go out")
	}).WithTimeout(30 * time.Second).Should(Succeed())
	g.Consistently(func(g Gomega) {
		g.Expect(h.inactiveOnSite(g, names...)).To(Equal([]string{"u1", "u2"}))
	}).WithTimeout(2 * time.Second).Should(Succeed())
	g.Expect(h.heldUsers(g, names...)).To(Equal([]string{"u3", "u4"}))

	// Releasing sends every held change, past the cap, and says so in the audit trail.
	s := h.settings()
	s.Annotations = map[string]string{scimv1.ReleaseHeldAnnotation: "2026-11-29-ticket-42"}
	g.Expect(testEnv.Client.Update(context.Background(), s)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(h.inactiveOnSite(g, names...)).To(Equal(names))
		g.Expect(h.heldUsers(g, names...)).To(BeEmpty())
	}).WithTimeout(45 * time.Second).Should(Succeed())
	u3 = h.user(g, "u3")
	applied := entries(u3, controllers.ActionDeactivate, scimv1.ResultApplied)
	g.Expect(applied).To(HaveLen(1))
	g.Expect(applied[0].Message).To(ContainSubstring("released by annotation"))
	g.Eventually(func(g Gomega) {
		g.Expect(meta.IsStatusConditionFalse(h.settings().Status.Conditions, scimv1.ConditionChangesHeld)).To(BeTrue())
	}).WithTimeout(30 * time.Second).Should(Succeed())
}

// Raising the cap releases held changes; a held user reactivated at the IdP is simply
// no longer held, and never deactivated.
func TestBrake_raisingTheCapReleasesAndReactivationCancels(t *testing.T) {
	h := newUserHarness(t, harnessOptions{sim: fullSite, settings: func(s *scimv1.ScimSettings) {
		s.Spec.Safety = &scimv1.SafetySpec{MaxDeactivationsPerHour: 1}
	}})
	names := []string{"v1", "v2", "v3"}
	h.createSynced(names...)
	for _, n := range names {
		h.updateUser(n, "okta", func(u *scimv1.StackUser) { u.Spec.Active = ptr.To(false) })
	}
	g := NewWithT(t)
	g.Eventually(func(g Gomega) {
		g.Expect(h.inactiveOnSite(g, names...)).To(HaveLen(1))
		g.Expect(h.heldUsers(g, names...)).To(HaveLen(2))
	}).WithTimeout(45 * time.Second).Should(Succeed())
	held := h.heldUsers(g, names...)
	h.updateUser(held[0], "okta", func(u *scimv1.StackUser) { u.Spec.Active = ptr.To(true) })
	h.eventuallySynced(held[0])
	h.updateSettings(func(s *scimv1.ScimSettings) { s.Spec.Safety.MaxDeactivationsPerHour = 10 })
	g.Eventually(func(g Gomega) {
		g.Expect(h.heldUsers(g, names...)).To(BeEmpty())
		g.Expect(h.inactiveOnSite(g, names...)).To(HaveLen(2))
		g.Expect(h.inactiveOnSite(g, held[0])).To(BeEmpty(), "the reactivated user was never deactivated")
	}).WithTimeout(45 * time.Second).Should(Succeed())
}

// A mass deletion of StackUsers (a GitOps prune, kubectl delete --all) is a mass
// deprovisioning too: past the cap the StackUsers stay, with their finalizer, until
// released.
func TestBrake_holdsMassDeletion(t *testing.T) {
	h := newUserHarness(t, harnessOptions{sim: fullSite, settings: func(s *scimv1.ScimSettings) {
		s.Spec.Safety = &scimv1.SafetySpec{MaxDeactivationsPerHour: 1}
	}})
	names := []string{"w1", "w2", "w3"}
	ids := h.createSynced(names...)
	for _, n := range names {
		if err := testEnv.Client.Delete(context.Background(), h.user(NewWithT(t), n)); err != nil {
			t.Fatal(err)
		}
	}
	gone := func(g Gomega) (out []string) {
		for _, n := range names {
			if testEnv.Client.Get(context.Background(), types.NamespacedName{Namespace: h.ns, Name: n}, &scimv1.StackUser{}) != nil {
				out = append(out, n)
			}
		}
		return out
	}
	inactive := func() (n int) {
		for _, id := range ids {
			if su, ok := h.sim.User(id); ok && !su.Active {
				n++
			}
		}
		return n
	}
	g := NewWithT(t)
	g.Eventually(func(g Gomega) {
		g.Expect(gone(g)).To(HaveLen(1))
		g.Expect(inactive()).To(Equal(1))
		for _, n := range names {
			u := &scimv1.StackUser{}
			if testEnv.Client.Get(context.Background(), types.NamespacedName{Namespace: h.ns, Name: n}, u) == nil {
				g.Expect(u).To(haveCondition(scimv1.ConditionSynced, metav1.ConditionFalse, controllers.ReasonChangeHeld))
			}
		}
	}).WithTimeout(45 * time.Second).Should(Succeed())
	h.updateSettings(func(s *scimv1.ScimSettings) { s.Spec.Safety.MaxDeactivationsPerHour = 0 })
	g.Eventually(func(g Gomega) {
		g.Expect(gone(g)).To(HaveLen(3))
		g.Expect(inactive()).To(Equal(3))
	}).WithTimeout(45 * time.Second).Should(Succeed())
}

// Observe mode on a large site must not cost two site lookups per user on every resync:
// a user already planned against an unchanged account is not evaluated again.
func TestObserve_resyncDoesNotReplanUnchangedUsers(t *testing.T) {
	h := newUserHarness(t, harnessOptions{sim: fullSite, settings: func(s *scimv1.ScimSettings) {
		fastResync(scimv1.DriftEnforce)(s)
		s.Spec.Mode = scimv1.ModeObserve
	}})
	h.seed(existing("fay", sitesim.User{}))
	h.createUser("fay", nil)
	h.eventually("fay", func(g Gomega, u *scimv1.StackUser) {
		g.Expect(planOf(u)).To(Equal([]string{"Link", "Update externalId →okta-fay"}))
	})
	lastResync := func() time.Time {
		if t := h.settings().Status.LastResyncTime; t != nil {
			return t.Time
		}
		return time.Time{}
	}
	g := NewWithT(t)
	// Let a resync that may have started before the plan was written finish.
	start := lastResync()
	g.Eventually(lastResync).WithTimeout(30 * time.Second).Should(BeTemporally(">", start))
	before, resyncs := h.sim.Requests()[sitesim.CountListUsers], 0
	for seen := lastResync(); resyncs < 3; resyncs++ {
		g.Eventually(lastResync).WithTimeout(30 * time.Second).Should(BeTemporally(">", seen))
		seen = lastResync()
	}
	// One page per resync (two site accounts); lookups would add two lists per resync.
	g.Expect(h.sim.Requests()[sitesim.CountListUsers] - before).To(BeNumerically("<=", resyncs+1))
}

// An IdP linking an existing account through the SCIM server names it exactly (the site
// id): the reconciler links that account, even where a lookup by userName would be
// ambiguous.
func TestLink_siteIDTheIdPLinkedWins(t *testing.T) {
	h := newUserHarness(t, harnessOptions{sim: fullSite})
	h.seed(existing("kim", sitesim.User{}))
	second := h.seed(existing("kim", sitesim.User{Title: "the one the IdP imported"}))
	h.createAnnotatedUser("kim", audit.SCIMFieldManager, map[string]string{scimv1.LinkSiteIDAnnotation: second.ID},
		func(s *scimv1.StackUserSpec) { s.Title = "the one the IdP imported" })
	got := h.eventuallySynced("kim")
	if got.Status.SiteID != second.ID {
		t.Fatalf("linked %s, want the account the IdP linked, %s", got.Status.SiteID, second.ID)
	}
	links := entries(got, controllers.ActionLink, scimv1.ResultApplied)
	if len(links) != 1 || !strings.Contains(links[0].Message, "site id the identity provider linked") {
		t.Fatalf("link entries: %+v", links)
	}
}

// A manager start reconciles every user; users whose status shows them in line cost no
// site request and no status write (at 100,000 users that was an hour of the site's
// budget), while a user that changed while the manager was down is still brought in line.
func TestRestart_inLineUsersCostNoSiteRequest(t *testing.T) {
	h := newUserHarness(t, harnessOptions{sim: fullSite})
	names := []string{"r1", "r2", "r3", "r4"}
	h.createSynced(names...)
	h.stopManager()
	h.updateUser("r4", "okta", func(u *scimv1.StackUser) { u.Spec.Title = "changed while the manager was down" })
	versions := map[string]string{}
	g := NewWithT(t)
	for _, n := range names[:3] {
		versions[n] = h.user(g, n).ResourceVersion
	}
	before := h.sim.Requests()
	h.stopManager = h.startManager()
	h.eventually("r4", func(g Gomega, u *scimv1.StackUser) {
		g.Expect(u.Status.ObservedGeneration).To(Equal(u.Generation))
		su, _ := h.sim.User(u.Status.SiteID)
		g.Expect(su.Title).To(Equal("changed while the manager was down"))
	})
	g.Consistently(func(g Gomega) {
		after := h.sim.Requests()
		// r4's reconcile: one GET and one PATCH.
		g.Expect(after[sitesim.CountGetUser] - before[sitesim.CountGetUser]).To(BeNumerically("<=", 1))
		for _, n := range names[:3] {
			g.Expect(h.user(g, n).ResourceVersion).To(Equal(versions[n]), "%s was written again", n)
		}
	}).WithTimeout(3 * time.Second).Should(Succeed())
}
