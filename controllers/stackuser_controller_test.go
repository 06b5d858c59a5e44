package controllers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/controllers"
	"github.com/stackscim/stack-scim-operator/internal/audit"
	"github.com/stackscim/stack-scim-operator/internal/sitesim"
)

func TestStackUserReconciler_createsSiteUserAndRecordsIt(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	h := newUserHarness(t, harnessOptions{sim: sitesim.Config{CreateUsers: true}})
	h.createUser("ada", func(s *scimv1.StackUserSpec) {
		s.Name = &scimv1.Name{GivenName: "Ada", FamilyName: "Lovelace"}
		s.Title, s.Department = "Engineer", "R&D"
	})
	u := h.eventuallySynced("ada")
	su := h.siteUser(g, u)
	g.Expect(su.UserName).To(Equal("ada@example.com"))
	g.Expect(su.ExternalID).To(Equal("okta-ada"))
	g.Expect(su.GivenName + " " + su.FamilyName).To(Equal("Ada Lovelace"))
	g.Expect(su.Email).To(Equal("ada@example.com"))
	g.Expect(su.Title).To(Equal("Engineer"))
	g.Expect(su.Department).To(Equal("R&D"))
	g.Expect(su.Active).To(BeTrue())
	g.Expect(su.Role).To(Equal(sitesim.RoleRegistered))

	g.Expect(u).To(haveCondition(scimv1.ConditionReady, metav1.ConditionTrue, controllers.ReasonSynced))
	g.Expect(u).To(haveCondition(scimv1.ConditionRoleChangeBlocked, metav1.ConditionFalse, controllers.ReasonRoleNotManaged))
	g.Expect(u.Finalizers).To(ContainElement(scimv1.Finalizer))
	g.Expect(u.Status.Site).NotTo(BeNil())
	g.Expect(u.Status.Site.Title).To(Equal("Engineer"))
	g.Expect(*u.Status.Site.Active).To(BeTrue())
	g.Expect(u.Status.Site.SyncTime).NotTo(BeNil())

	created := entries(u, controllers.ActionCreate, scimv1.ResultApplied)
	g.Expect(created).To(HaveLen(1))
	g.Expect(created[0].Actor.Kind).To(Equal(scimv1.ActorIdentityProvider))
	g.Expect(created[0].Actor.RequestID).To(Equal("req-ada"))
	g.Expect(created[0].Actor.UserAgent).To(Equal("Okta SCIM Client 1.0.0"))
	g.Expect(created[0].Changes).To(ContainElement(scimv1.FieldChange{Field: "title", New: "Engineer"}))
	g.Expect(h.sim.Users()).To(HaveLen(1))
}

func TestStackUserReconciler_gitOpsEditsAreAttributedToTheirFieldManager(t *testing.T) {
	t.Parallel()
	h := newUserHarness(t, harnessOptions{sim: sitesim.Config{CreateUsers: true}})
	h.createUserAs("gina", "flux-kustomize", nil)
	u := h.eventuallySynced("gina")
	created := entries(u, controllers.ActionCreate, scimv1.ResultApplied)
	NewWithT(t).Expect(created).To(HaveLen(1))
	NewWithT(t).Expect(created[0].Actor).To(Equal(scimv1.Actor{Kind: scimv1.ActorGitOps, Name: "flux-kustomize"}))
}

func TestStackUserReconciler_linksExistingSiteUser(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		seed      sitesim.User
		filterOff bool
		by        string
	}{
		"by externalId":                        {seed: sitesim.User{UserName: "someone-else@example.com", ExternalID: "okta-lin"}, by: "externalId"},
		"by userName, case-insensitively":      {seed: sitesim.User{UserName: "LIN@Example.com"}, by: "userName"},
		"by userName without filter support":   {seed: sitesim.User{UserName: "lin@example.com"}, filterOff: true, by: "userName"},
		"by externalId without filter support": {seed: sitesim.User{UserName: "x@example.com", ExternalID: "okta-lin"}, filterOff: true, by: "externalId"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			h := newUserHarness(t, harnessOptions{sim: sitesim.Config{CreateUsers: true, FilterUnsupported: tc.filterOff}})
			// Site-only users around it, so a list scan has something to skip.
			for i := range 3 {
				h.seed(sitesim.User{UserName: "other" + string(rune('a'+i)) + "@example.com", Active: true})
			}
			tc.seed.Active = true
			existing := h.seed(tc.seed)
			h.createUser("lin", nil)
			u := h.eventuallySynced("lin")
			g.Expect(u.Status.SiteID).To(Equal(existing.ID))
			g.Expect(h.sim.Users()).To(HaveLen(4), "linked, not duplicated")
			g.Expect(h.sim.Requests()[sitesim.CountCreateUser]).To(BeZero())
			link := entries(u, controllers.ActionLink, scimv1.ResultApplied)
			g.Expect(link).To(HaveLen(1))
			g.Expect(link[0].Message).To(ContainSubstring(tc.by))
			// The profile is brought in line, externalId included.
			su := h.siteUser(g, u)
			g.Expect(su.ExternalID).To(Equal("okta-lin"))
			g.Expect(su.DisplayName).To(Equal("User lin"))
		})
	}
}

func TestStackUserReconciler_waitsForFirstSignInWhenTheSiteCannotCreate(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	h := newUserHarness(t, harnessOptions{sim: sitesim.Config{CreateUsers: false}})
	h.createUser("sam", nil)
	h.eventually("sam", func(g Gomega, u *scimv1.StackUser) {
		g.Expect(u).To(haveCondition(scimv1.ConditionSynced, metav1.ConditionFalse, controllers.ReasonSiteUserNotFound))
		g.Expect(u).To(haveCondition(scimv1.ConditionReady, metav1.ConditionFalse, controllers.ReasonSiteUserNotFound))
	})
	posts := h.sim.Requests()[sitesim.CountCreateUser]
	g.Expect(posts).To(BeNumerically("<=", 2), "no hot loop of creates")

	// First SAML sign-in: the account appears on the site and is linked.
	su := h.seed(sitesim.User{UserName: "sam@example.com", ExternalID: "okta-sam", Active: true})
	u := h.eventuallySynced("sam")
	g.Expect(u.Status.SiteID).To(Equal(su.ID))
	g.Expect(h.sim.Requests()[sitesim.CountCreateUser]).To(BeNumerically("<=", 4))
}

func TestStackUserReconciler_tenantThatDoesNotCreateUsersNeverPosts(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	h := newUserHarness(t, harnessOptions{
		sim:      sitesim.Config{CreateUsers: true},
		settings: func(s *scimv1.ScimSettings) { s.Spec.Site.CreateUsers = ptr.To(false) },
	})
	h.createUser("nora", nil)
	h.eventually("nora", func(g Gomega, u *scimv1.StackUser) {
		g.Expect(u).To(haveCondition(scimv1.ConditionSynced, metav1.ConditionFalse, controllers.ReasonSiteUserNotFound))
	})
	g.Expect(h.sim.Requests()[sitesim.CountCreateUser]).To(BeZero())
}

func TestStackUserReconciler_deactivatesAndReactivates(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	h := newUserHarness(t, harnessOptions{sim: sitesim.Config{CreateUsers: true}})
	h.createUser("dana", nil)
	h.eventuallySynced("dana")

	h.updateUser("dana", "stack-scim-operator-scim", func(u *scimv1.StackUser) { u.Spec.Active = ptr.To(false) })
	u := h.eventuallySynced("dana")
	g.Expect(h.siteUser(g, u).Active).To(BeFalse())
	g.Expect(*u.Status.Site.Active).To(BeFalse())
	g.Expect(entries(u, controllers.ActionDeactivate, scimv1.ResultApplied)).To(HaveLen(1))
	g.Expect(entries(u, controllers.ActionDeactivate, scimv1.ResultApplied)[0].Changes).To(
		Equal([]scimv1.FieldChange{{Field: "active", Old: "true", New: "false"}}))

	h.updateUser("dana", "stack-scim-operator-scim", func(u *scimv1.StackUser) { u.Spec.Active = ptr.To(true) })
	u = h.eventuallySynced("dana")
	g.Expect(h.siteUser(g, u).Active).To(BeTrue())
	g.Expect(entries(u, controllers.ActionReactivate, scimv1.ResultApplied)).To(HaveLen(1))
	g.Expect(h.sim.Users()).To(HaveLen(1), "reactivated, never recreated")
	g.Expect(h.sim.Requests()[sitesim.CountPutUser]).To(BeZero(), "never a PUT")
}

func TestStackUserReconciler_roleTransitionsFollowThePromotionSwitches(t *testing.T) {
	t.Parallel()
	// Which switches each transition needs: every non-Registered role involved.
	transitions := []struct {
		from, to           scimv1.Role
		needMod, needAdmin bool
	}{
		{from: "Registered", to: "Moderator", needMod: true},
		{from: "Moderator", to: "Registered", needMod: true},
		{from: "Registered", to: "Admin", needAdmin: true},
		{from: "Admin", to: "Registered", needAdmin: true},
		{from: "Moderator", to: "Admin", needMod: true, needAdmin: true},
		{from: "Admin", to: "Moderator", needMod: true, needAdmin: true},
	}
	switches := map[string]struct{ mod, admin bool }{
		"both off":            {},
		"moderator switch on": {mod: true},
		"admin switch on":     {admin: true},
		"both switches on":    {mod: true, admin: true},
	}
	for name, sw := range switches {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newUserHarness(t, harnessOptions{
				// The site's own switches are on: only ours decide.
				sim: sitesim.Config{AllowModeratorPromotion: true, AllowAdminPromotion: true},
				settings: func(s *scimv1.ScimSettings) {
					s.Spec.AllowModeratorPromotion, s.Spec.AllowAdminPromotion = sw.mod, sw.admin
				},
			})
			names := make([]string, len(transitions))
			for i, tr := range transitions {
				names[i] = strings.ToLower(string(tr.from) + "-to-" + string(tr.to))
				h.seed(sitesim.User{UserName: names[i] + "@example.com", Role: string(tr.from), Active: true})
				h.createUser(names[i], func(s *scimv1.StackUserSpec) { s.Role = role(tr.to) })
			}
			for i, tr := range transitions {
				allowed := (!tr.needMod || sw.mod) && (!tr.needAdmin || sw.admin)
				u := h.eventually(names[i], func(g Gomega, u *scimv1.StackUser) {
					g.Expect(u.Status.ObservedGeneration).To(Equal(u.Generation))
					if allowed {
						g.Expect(u).To(haveCondition(scimv1.ConditionRoleChangeBlocked, metav1.ConditionFalse, controllers.ReasonRoleInSync))
						g.Expect(u).To(haveCondition(scimv1.ConditionReady, metav1.ConditionTrue, controllers.ReasonSynced))
					} else {
						g.Expect(u).To(haveCondition(scimv1.ConditionRoleChangeBlocked, metav1.ConditionTrue, controllers.ReasonPromotionNotAllowed))
						g.Expect(u).To(haveCondition(scimv1.ConditionReady, metav1.ConditionFalse, controllers.ReasonPromotionNotAllowed))
					}
				})
				g := NewWithT(t)
				su := h.siteUser(g, u)
				if allowed {
					g.Expect(su.Role).To(Equal(string(tr.to)), names[i])
					applied := entries(u, controllers.ActionRoleChange, scimv1.ResultApplied)
					g.Expect(applied).To(HaveLen(1), names[i])
					g.Expect(applied[0].Changes).To(Equal([]scimv1.FieldChange{{Field: "role", Old: string(tr.from), New: string(tr.to)}}))
				} else {
					g.Expect(su.Role).To(Equal(string(tr.from)), names[i])
					blocked := entries(u, controllers.ActionRoleChange, scimv1.ResultBlocked)
					g.Expect(blocked).To(HaveLen(1), names[i])
					g.Expect(blocked[0].Actor.Kind).To(Equal(scimv1.ActorIdentityProvider))
				}
			}
		})
	}
}

func TestStackUserReconciler_blockedPromotionAppliedWhenAllowed(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	h := newUserHarness(t, harnessOptions{sim: sitesim.Config{CreateUsers: true, AllowAdminPromotion: true, AllowModeratorPromotion: true}})
	h.createUser("paul", func(s *scimv1.StackUserSpec) { s.Role = role(scimv1.RoleAdmin) })
	h.eventually("paul", func(g Gomega, u *scimv1.StackUser) {
		g.Expect(u).To(haveCondition(scimv1.ConditionRoleChangeBlocked, metav1.ConditionTrue, controllers.ReasonPromotionNotAllowed))
		g.Expect(u.Status.ObservedGeneration).To(Equal(u.Generation))
	})

	// Another spec change reconciles again: the same blocked change is not recorded twice.
	h.updateUser("paul", "stack-scim-operator-scim", func(u *scimv1.StackUser) { u.Spec.Title = "Lead" })
	u := h.eventually("paul", func(g Gomega, u *scimv1.StackUser) {
		g.Expect(u.Status.ObservedGeneration).To(Equal(u.Generation))
		g.Expect(h.siteUser(g, u).Title).To(Equal("Lead"))
	})
	g.Expect(entries(u, controllers.ActionRoleChange, scimv1.ResultBlocked)).To(HaveLen(1))
	g.Expect(h.siteUser(g, u).Role).To(Equal(sitesim.RoleRegistered))
	g.Expect(u).To(haveCondition(scimv1.ConditionRoleChangeBlocked, metav1.ConditionTrue, controllers.ReasonPromotionNotAllowed))

	// Turning the switch on applies the waiting change.
	h.updateSettings(func(s *scimv1.ScimSettings) { s.Spec.AllowAdminPromotion = true })
	u = h.eventually("paul", func(g Gomega, u *scimv1.StackUser) {
		g.Expect(u).To(haveCondition(scimv1.ConditionRoleChangeBlocked, metav1.ConditionFalse, controllers.ReasonRoleInSync))
		g.Expect(u).To(haveCondition(scimv1.ConditionReady, metav1.ConditionTrue, controllers.ReasonSynced))
	})
	g.Expect(h.siteUser(g, u).Role).To(Equal(sitesim.RoleAdmin))
	applied := entries(u, controllers.ActionRoleChange, scimv1.ResultApplied)
	g.Expect(applied).To(HaveLen(1))
	g.Expect(applied[0].Actor.Kind).To(Equal(scimv1.ActorOperator))
	g.Expect(applied[0].Changes).To(Equal([]scimv1.FieldChange{{Field: "role", Old: "Registered", New: "Admin"}}))
	g.Expect(u.Status.History[0].Action).To(Equal(controllers.ActionRoleChange), "newest first")
}

func TestStackUserReconciler_detectsSilentlyIgnoredRoleWrite(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	// Our switches are on, the site's own are off: it answers 200 and keeps the role.
	h := newUserHarness(t, harnessOptions{
		sim:      sitesim.Config{CreateUsers: true},
		settings: func(s *scimv1.ScimSettings) { s.Spec.AllowModeratorPromotion = true },
	})
	h.createUser("ivy", func(s *scimv1.StackUserSpec) { s.Role = role(scimv1.RoleModerator) })
	h.eventually("ivy", func(g Gomega, u *scimv1.StackUser) {
		g.Expect(u).To(haveCondition(scimv1.ConditionSynced, metav1.ConditionFalse, controllers.ReasonRoleWriteIgnored))
		g.Expect(u).To(haveCondition(scimv1.ConditionReady, metav1.ConditionFalse, controllers.ReasonRoleWriteIgnored))
	})
	// Retried with back-off, recorded once.
	g.Eventually(func() int64 { return h.sim.Requests()[sitesim.CountRoleIgnored] }).
		WithTimeout(20 * time.Second).Should(BeNumerically(">=", 3))
	u := h.user(g, "ivy")
	failed := entries(u, controllers.ActionRoleChange, scimv1.ResultFailed)
	g.Expect(failed).To(HaveLen(1))
	g.Expect(failed[0].Changes).To(Equal([]scimv1.FieldChange{{Field: "role", Old: "Registered", New: "Moderator"}}))
	g.Expect(u.Status.ObservedGeneration).NotTo(Equal(u.Generation), "not in line yet")

	// The site admin turns the site's switch on: the retry succeeds.
	h.sim.SetConfig(func(c *sitesim.Config) { c.AllowModeratorPromotion = true })
	u = h.eventuallySynced("ivy")
	g.Expect(h.siteUser(g, u).Role).To(Equal(sitesim.RoleModerator))
	g.Expect(entries(u, controllers.ActionRoleChange, scimv1.ResultApplied)).To(HaveLen(1))
}

func TestStackUserReconciler_profileChangesArePatched(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	h := newUserHarness(t, harnessOptions{sim: sitesim.Config{CreateUsers: true}})
	h.createUser("pia", nil)
	h.eventuallySynced("pia")
	h.updateUser("pia", "stack-scim-operator-scim", func(u *scimv1.StackUser) {
		u.Spec.DisplayName = "Pia P."
		u.Spec.Name = &scimv1.Name{GivenName: "Pia", FamilyName: "Parker"}
		u.Spec.Emails = []scimv1.MultiValuedAttribute{{Value: "other@example.com", Type: "home"}, {Value: "pia.p@example.com", Type: "work", Primary: true}}
		u.Spec.Title, u.Spec.Department = "CTO", "Office"
	})
	u := h.eventually("pia", func(g Gomega, u *scimv1.StackUser) {
		g.Expect(u.Status.ObservedGeneration).To(Equal(u.Generation))
		su := h.siteUser(g, u)
		g.Expect([]string{su.DisplayName, su.GivenName, su.FamilyName, su.Email, su.Title, su.Department}).To(
			Equal([]string{"Pia P.", "Pia", "Parker", "pia.p@example.com", "CTO", "Office"}))
	})
	upd := entries(u, controllers.ActionUpdate, scimv1.ResultApplied)
	g.Expect(upd).To(HaveLen(1))
	g.Expect(upd[0].Changes).To(ContainElement(scimv1.FieldChange{Field: "title", Old: "", New: "CTO"}))
	g.Expect(upd[0].Changes).To(ContainElement(scimv1.FieldChange{Field: "email", Old: "pia@example.com", New: "pia.p@example.com"}))
	g.Expect(h.sim.Requests()[sitesim.CountPatchUser]).To(BeEquivalentTo(1), "all fields in one PATCH")
}

func TestStackUserReconciler_survivesSiteFaults(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		sim     sitesim.Config
		timeout time.Duration
		heal    func(*sitesim.Config)
	}{
		"throttled with Retry-After": {sim: sitesim.Config{ThrottleRate: 0.5, RetryAfterSeconds: 1}},
		"server errors":              {sim: sitesim.Config{ServerErrorRate: 0.6}},
		"timeouts until the site is fast again": {
			sim:     sitesim.Config{Latency: sitesim.Duration(time.Second)},
			timeout: 200 * time.Millisecond,
			heal:    func(c *sitesim.Config) { c.Latency = 0 },
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			tc.sim.CreateUsers = true
			tc.sim.AllowModeratorPromotion = true
			h := newUserHarness(t, harnessOptions{sim: tc.sim, settings: func(s *scimv1.ScimSettings) {
				s.Spec.AllowModeratorPromotion = true
				if tc.timeout > 0 {
					s.Spec.Site.Timeout = &metav1.Duration{Duration: tc.timeout}
				}
			}})
			for _, n := range []string{"f1", "f2", "f3"} {
				h.createUser(n, func(s *scimv1.StackUserSpec) { s.Role = role(scimv1.RoleModerator); s.Title = "T" })
			}
			if tc.heal != nil {
				h.eventually("f1", func(g Gomega, u *scimv1.StackUser) {
					g.Expect(u).To(haveCondition(scimv1.ConditionSynced, metav1.ConditionFalse, controllers.ReasonSiteUnreachable))
				})
				h.sim.SetConfig(tc.heal)
			}
			for _, n := range []string{"f1", "f2", "f3"} {
				u := h.eventuallySynced(n)
				su := h.siteUser(g, u)
				g.Expect(su.Role).To(Equal(sitesim.RoleModerator))
				g.Expect(su.Title).To(Equal("T"))
			}
			g.Expect(h.sim.Users()).To(HaveLen(3), "no duplicate creates")
		})
	}
}

func TestStackUserReconciler_deletionPolicy(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		policy        scimv1.DeletionPolicy
		siteDeletes   bool
		wantGone      bool
		wantEventKind string
	}{
		"Deactivate keeps the site user, deactivated":   {policy: scimv1.DeletionDeactivate, wantEventKind: "DeactivateApplied"},
		"Delete demotes then deletes":                   {policy: scimv1.DeletionDelete, siteDeletes: true, wantGone: true, wantEventKind: "DeleteApplied"},
		"Delete on a site without deletion deactivates": {policy: scimv1.DeletionDelete, wantEventKind: "DeleteFailed"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			h := newUserHarness(t, harnessOptions{
				sim: sitesim.Config{CreateUsers: true, DeleteUsers: tc.siteDeletes, AllowModeratorPromotion: true},
				settings: func(s *scimv1.ScimSettings) {
					s.Spec.DeletionPolicy = tc.policy
					s.Spec.AllowModeratorPromotion = true
				},
			})
			h.createUser("del", func(s *scimv1.StackUserSpec) { s.Role = role(scimv1.RoleModerator) })
			u := h.eventuallySynced("del")
			g.Expect(h.siteUser(g, u).Role).To(Equal(sitesim.RoleModerator))
			siteID := u.Status.SiteID

			g.Expect(testEnv.Client.Delete(context.Background(), u)).To(Succeed())
			g.Eventually(func() bool {
				err := testEnv.Client.Get(context.Background(), client.ObjectKeyFromObject(u), &scimv1.StackUser{})
				return apierrors.IsNotFound(err)
			}).WithTimeout(30 * time.Second).Should(BeTrue())

			su, exists := h.sim.User(siteID)
			if tc.wantGone {
				g.Expect(exists).To(BeFalse())
			} else {
				g.Expect(exists).To(BeTrue())
				g.Expect(su.Active).To(BeFalse())
			}
			g.Eventually(func() []string { return eventReasons(g, h.ns) }).WithTimeout(20 * time.Second).Should(ContainElement(tc.wantEventKind))
		})
	}
}

func eventReasons(g Gomega, ns string) []string {
	var list eventsv1.EventList
	g.Expect(testEnv.Client.List(context.Background(), &list, client.InNamespace(ns))).To(Succeed())
	var out []string
	for _, e := range list.Items {
		out = append(out, e.Reason)
	}
	return out
}

func TestStackUserReconciler_historyIsBoundedNewestFirst(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	h := newUserHarness(t, harnessOptions{
		sim:      sitesim.Config{CreateUsers: true},
		settings: func(s *scimv1.ScimSettings) { s.Spec.HistoryLimit = 3 },
	})
	h.createUser("hal", nil)
	h.eventuallySynced("hal")
	for _, active := range []bool{false, true, false, true} {
		h.updateUser("hal", "stack-scim-operator-scim", func(u *scimv1.StackUser) { u.Spec.Active = ptr.To(active) })
		h.eventually("hal", func(g Gomega, u *scimv1.StackUser) {
			g.Expect(u.Status.ObservedGeneration).To(Equal(u.Generation))
			g.Expect(h.siteUser(g, u).Active).To(Equal(active))
		})
	}
	u := h.user(g, "hal")
	g.Expect(u.Status.History).To(HaveLen(3))
	g.Expect(u.Status.History[0].Action).To(Equal(controllers.ActionReactivate))
	g.Expect(u.Status.History[1].Action).To(Equal(controllers.ActionDeactivate))
	g.Expect(u.Status.History[2].Action).To(Equal(controllers.ActionReactivate))
	g.Expect(u.Status.History[0].Time.Time).NotTo(BeTemporally("<", u.Status.History[2].Time.Time))
}

func TestStackUserReconciler_missingSettingsIsReportedThenResolved(t *testing.T) {
	t.Parallel()
	h := newUserHarness(t, harnessOptions{noSettings: true, sim: sitesim.Config{CreateUsers: true}})
	h.createUser("otto", nil)
	h.eventually("otto", func(g Gomega, u *scimv1.StackUser) {
		g.Expect(u).To(haveCondition(scimv1.ConditionSynced, metav1.ConditionFalse, controllers.ReasonSettingsNotFound))
		g.Expect(u).To(haveCondition(scimv1.ConditionReady, metav1.ConditionFalse, controllers.ReasonSettingsNotFound))
	})
	h.createSettings(nil)
	h.eventuallySynced("otto")
}

func TestStackUserReconciler_siteTokenProblemsAndNoSecretAnywhere(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	h := newUserHarness(t, harnessOptions{sim: sitesim.Config{CreateUsers: true, ThrottleRate: 0.2}})
	wrong := "wrong-site-token-" + h.ns + "-11ff"
	setToken := func(tok string) {
		s := &corev1.Secret{}
		g.Expect(testEnv.Client.Get(context.Background(), types.NamespacedName{Namespace: h.ns, Name: "site-token"}, s)).To(Succeed())
		s.Data = map[string][]byte{"token": []byte(tok)}
		g.Expect(testEnv.Client.Update(context.Background(), s)).To(Succeed())
	}
	setToken(wrong)
	h.createUser("tess", nil)
	h.eventually("tess", func(g Gomega, u *scimv1.StackUser) {
		g.Expect(u).To(haveCondition(scimv1.ConditionSynced, metav1.ConditionFalse, controllers.ReasonSiteUnauthorized))
	})
	setToken("")
	h.eventually("tess", func(g Gomega, u *scimv1.StackUser) {
		g.Expect(u).To(haveCondition(scimv1.ConditionSynced, metav1.ConditionFalse, controllers.ReasonSiteTokenNotFound))
	})
	// Fixing the Secret re-queues the tenant's users at once.
	setToken(h.siteToken)
	h.eventuallySynced("tess")
	h.updateUser("tess", "stack-scim-operator-scim", func(u *scimv1.StackUser) { u.Spec.Active = ptr.To(false) })
	h.eventuallySynced("tess")
	g.Eventually(func() []string { return eventReasons(g, h.ns) }).WithTimeout(20 * time.Second).Should(ContainElement("DeactivateApplied"))

	var users scimv1.StackUserList
	g.Expect(testEnv.Client.List(context.Background(), &users, client.InNamespace(h.ns))).To(Succeed())
	var events eventsv1.EventList
	g.Expect(testEnv.Client.List(context.Background(), &events, client.InNamespace(h.ns))).To(Succeed())
	settings := h.settings()
	dump, err := json.Marshal([]any{users, events, settings.Status})
	g.Expect(err).NotTo(HaveOccurred())
	logs := h.logs.String()
	g.Expect(logs).To(ContainSubstring("audit"), "the audit log lines were captured")
	for _, secret := range []string{h.siteToken, wrong, h.idpToken} {
		g.Expect(string(dump)).NotTo(ContainSubstring(secret))
		g.Expect(logs).NotTo(ContainSubstring(secret))
	}
}

func TestStackUserReconciler_concurrentHistoryAppendsAreNeverLost(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	h := newUserHarness(t, harnessOptions{
		sim:      sitesim.Config{CreateUsers: true},
		settings: func(s *scimv1.ScimSettings) { s.Spec.HistoryLimit = 200 },
	})
	h.createUser("cora", nil)
	h.eventuallySynced("cora")

	// The SCIM server appends its own entries while the reconciler applies spec changes.
	rec := &audit.Recorder{Client: testEnv.Client, Log: logr.Discard()}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 10 {
			u := &scimv1.StackUser{}
			if err := testEnv.Client.Get(context.Background(), types.NamespacedName{Namespace: h.ns, Name: "cora"}, u); err != nil {
				t.Errorf("reading: %v", err)
				return
			}
			e := scimv1.AuditEntry{Actor: scimv1.Actor{Kind: scimv1.ActorIdentityProvider, RequestID: fmt.Sprintf("scim-%d", i)},
				Action: "Update", Result: scimv1.ResultApplied}
			if err := rec.Append(context.Background(), u, 200, e); err != nil {
				t.Errorf("appending: %v", err)
				return
			}
		}
	}()
	titles := []string{"A", "B", "C", "D", "E"}
	for _, title := range titles {
		h.updateUser("cora", "stack-scim-operator-scim", func(u *scimv1.StackUser) { u.Spec.Title = title })
		h.eventually("cora", func(g Gomega, u *scimv1.StackUser) {
			g.Expect(u.Status.ObservedGeneration).To(Equal(u.Generation))
			g.Expect(h.siteUser(g, u).Title).To(Equal(title))
		})
	}
	<-done
	u := h.user(g, "cora")
	var scim, applied int
	for _, e := range u.Status.History {
		if strings.HasPrefix(e.Actor.RequestID, "scim-") {
			scim++
		}
		if e.Action == controllers.ActionUpdate && e.Actor.Kind == scimv1.ActorIdentityProvider && e.Actor.RequestID == "req-cora" {
			applied++
		}
	}
	g.Expect(scim).To(Equal(10))
	g.Expect(applied).To(Equal(len(titles)))
}

func TestStackUserReconciler_disabledTenantLeavesTheSiteAlone(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	h := newUserHarness(t, harnessOptions{
		sim:      sitesim.Config{CreateUsers: true},
		settings: func(s *scimv1.ScimSettings) { s.Spec.Enabled = ptr.To(false) },
	})
	h.createUser("erin", nil)
	h.eventually("erin", func(g Gomega, u *scimv1.StackUser) {
		g.Expect(u).To(haveCondition(scimv1.ConditionSynced, metav1.ConditionFalse, controllers.ReasonTenantDisabled))
	})
	g.Consistently(func() int { return len(h.sim.Users()) }, time.Second, 100*time.Millisecond).Should(BeZero(),
		"nothing reaches the site while SCIM is off")

	h.updateSettings(func(s *scimv1.ScimSettings) { s.Spec.Enabled = ptr.To(true) })
	u := h.eventuallySynced("erin")
	g.Expect(h.siteUser(g, u).Active).To(BeTrue())
}

// TestStackUserReconciler_movesPendingSCIMEntriesIntoTheHistory: the SCIM server leaves
// each request's audit entry on the object it writes; the reconciler moves them into
// status.history, oldest first and exactly once, ahead of its own entries.
func TestStackUserReconciler_movesPendingSCIMEntriesIntoTheHistory(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	h := newUserHarness(t, harnessOptions{sim: sitesim.Config{CreateUsers: true}})
	idp := func(id, action string, at time.Time, changes ...scimv1.FieldChange) scimv1.AuditEntry {
		return scimv1.AuditEntry{Time: metav1.NewTime(at), Action: action, Result: scimv1.ResultApplied, Changes: changes,
			Actor: scimv1.Actor{Kind: scimv1.ActorIdentityProvider, Name: h.ns + "/" + tenantName, UserAgent: "Okta SCIM Client 1.0.0", RequestID: id}}
	}
	u := &scimv1.StackUser{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "pending", Labels: map[string]string{scimv1.LabelSettings: tenantName}},
		Spec:       scimv1.StackUserSpec{SettingsRef: scimv1.SettingsReference{Name: tenantName}, UserName: "pending@example.com", ExternalID: "okta-pending"},
	}
	now := time.Now()
	audit.AddPending(u, 20, idp("req-create", "Create", now.Add(-2*time.Second), scimv1.FieldChange{Field: "userName", New: "pending@example.com"}))
	audit.AddPending(u, 20, idp("req-patch", "Patch", now.Add(-time.Second), scimv1.FieldChange{Field: "title", New: "Engineer"}))
	info, _ := json.Marshal(audit.RequestInfo{RequestID: "req-patch", UserAgent: "Okta SCIM Client 1.0.0", Tenant: h.ns + "/" + tenantName, Generation: 1})
	u.Annotations[audit.AnnotationLastSCIMRequest] = string(info)
	g.Expect(testEnv.Client.Create(context.Background(), u, client.FieldOwner(audit.SCIMFieldManager))).To(Succeed())

	fromIdP := func(u *scimv1.StackUser) []string {
		var out []string
		for _, e := range u.Status.History {
			if e.Actor.Kind == scimv1.ActorIdentityProvider && e.Message == "" {
				out = append(out, e.Actor.RequestID)
			}
		}
		return out
	}
	got := h.eventuallySynced("pending")
	g.Expect(fromIdP(got)).To(Equal([]string{"req-patch", "req-create"}), "newest first, each once: %+v", got.Status.History)
	g.Expect(got.Status.History[len(got.Status.History)-1].Changes).To(ContainElement(scimv1.FieldChange{Field: "userName", New: "pending@example.com"}))
	g.Expect(got.Status.History[0].Message).To(HavePrefix("created site user"), "the site change the requests led to comes after them")
	g.Expect(got.Status.History[0].Actor.RequestID).To(Equal("req-patch"), "and names the request that left the spec as it is")

	// A spec change makes the reconciler write the status again: nothing is moved twice.
	h.updateUser("pending", "kubectl", func(u *scimv1.StackUser) { u.Spec.Title = "Engineer" })
	h.eventually("pending", func(g Gomega, u *scimv1.StackUser) {
		g.Expect(u.Status.ObservedGeneration).To(Equal(u.Generation))
	})
	g.Consistently(func() []string { return fromIdP(h.user(g, "pending")) }, time.Second, 200*time.Millisecond).
		Should(Equal([]string{"req-patch", "req-create"}))
}
