package plan_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/plan"
)

var heldAt = metav1.NewTime(time.Date(2026, 11, 29, 9, 12, 0, 0, time.UTC))

func settings(mode scimv1.Mode) *scimv1.ScimSettings {
	return &scimv1.ScimSettings{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "okta", Generation: 2},
		Spec:       scimv1.ScimSettingsSpec{Mode: mode, Site: scimv1.SiteSpec{URL: "https://stack.example.com/api/scim/v2"}},
		Status:     scimv1.ScimSettingsStatus{ObservedGeneration: 2},
	}
}

// user is a StackUser of team-a/okta evaluated at its current generation.
func user(name, userName string, changes ...scimv1.PlannedChange) scimv1.StackUser {
	return scimv1.StackUser{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: name, Generation: 3},
		Spec:       scimv1.StackUserSpec{SettingsRef: scimv1.SettingsReference{Name: "okta"}, UserName: userName},
		Status:     scimv1.StackUserStatus{ObservedGeneration: 3, PlannedChanges: changes},
	}
}

func synced(reason string, gen int64) []metav1.Condition {
	return []metav1.Condition{{Type: scimv1.ConditionSynced, Status: metav1.ConditionFalse, Reason: reason, ObservedGeneration: gen}}
}

func text(t *testing.T, p *plan.Plan) string {
	t.Helper()
	var b bytes.Buffer
	if err := plan.Text(&b, p); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// The example tenant of the issue: every kind of line a user reads, sorted by userName
// whatever order the StackUsers came in, the held demotion marked, the summary and the
// site accounts no StackUser describes.
func TestText_observeTenantReadsLikeTheIssue(t *testing.T) {
	g := NewWithT(t)
	s := settings(scimv1.ModeObserve)
	s.Status.Users = &scimv1.UserCounts{SiteOnly: 3}
	s.Status.SiteOnlyUsers = []scimv1.SiteAccountSample{
		{ID: "17", UserName: "frank@example.com", Active: true},
		{ID: "12", UserName: "Eve@example.com", Active: false},
	}
	erin := user("erin", "erin@example.com", scimv1.PlannedChange{Action: scimv1.PlanDemote, Field: "role", Old: "Admin", New: "Registered"})
	erin.Status.HeldSince = &heldAt
	erin.Status.Conditions = synced(scimv1.ReasonChangeHeld, 3)
	carol := user("carol", "carol@example.com", scimv1.PlannedChange{Action: scimv1.PlanDeactivate, Field: "active", Old: "true", New: "false"})
	carol.Status.Conditions = synced(scimv1.ReasonObserveOnly, 3)
	users := []scimv1.StackUser{
		erin,
		user("dave", "dave@example.com", scimv1.PlannedChange{Action: scimv1.PlanCreate, New: "dave@example.com"}),
		carol,
		user("bob", "bob@example.com", scimv1.PlannedChange{Action: scimv1.PlanUpdate, Field: "title", Old: "Engineer", New: "Senior Engineer"}),
		user("alice", "alice@example.com", scimv1.PlannedChange{Action: scimv1.PlanLink, New: "1001"}),
		user("zed", "zed@example.com"), // in sync: no line
	}
	tn := plan.Build(s, users)
	p := &plan.Plan{Tenants: []plan.Tenant{tn}}

	g.Expect(text(t, p)).To(Equal(`Tenant team-a/okta  (mode Observe, site https://stack.example.com/api/scim/v2)
  ~ link        alice@example.com  → site account 1001
  ~ update      bob@example.com    title: "Engineer" → "Senior Engineer"
  - deactivate  carol@example.com
  + create      dave@example.com
  ↓ demote      erin@example.com   Admin → Registered  (held by the brake since 2026-11-29T09:12:00Z)
Plan: 1 to link, 1 to create, 1 to update, 0 to activate, 1 to deactivate, 0 to promote, 1 to demote, 0 to delete; 1 held.
3 site accounts no StackUser describes (left unchanged): Eve@example.com (id 12, inactive), frank@example.com (id 17) and 1 more.
`))
	g.Expect(p.Changed()).To(BeTrue())
	g.Expect(p.Complete()).To(BeTrue())
	g.Expect(tn.Counts).To(Equal(plan.Counts{Users: 5, Link: 1, Create: 1, Update: 1, Deactivate: 1, Demote: 1, Held: 1}))
}

func TestText_noChanges(t *testing.T) {
	g := NewWithT(t)
	p := &plan.Plan{Tenants: []plan.Tenant{plan.Build(settings(""), []scimv1.StackUser{user("a", "a@example.com")})}}
	g.Expect(text(t, p)).To(Equal(`Tenant team-a/okta  (mode Enforce, site https://stack.example.com/api/scim/v2)
  No changes.
Plan: 0 to link, 0 to create, 0 to update, 0 to activate, 0 to deactivate, 0 to promote, 0 to demote, 0 to delete; 0 held.
`))
	g.Expect(p.Changed()).To(BeFalse())
	g.Expect(p.Complete()).To(BeTrue())
}

// One user's several changes print one line each, in the order plans print actions; the
// userName column fits the longest name; users sort case-insensitively.
func TestText_severalChangesOfOneUserAndCaseInsensitiveOrder(t *testing.T) {
	g := NewWithT(t)
	users := []scimv1.StackUser{
		user("b", "bea@example.com",
			scimv1.PlannedChange{Action: scimv1.PlanPromote, Field: "role", Old: "Registered", New: "Moderator"},
			scimv1.PlannedChange{Action: scimv1.PlanUpdate, Field: "title", New: "Lead"},
			scimv1.PlannedChange{Action: scimv1.PlanUpdate, Field: "department", Old: "R&D"},
			scimv1.PlannedChange{Action: scimv1.PlanActivate, Field: "active", Old: "false", New: "true"},
			scimv1.PlannedChange{Action: scimv1.PlanLink, New: "77"},
		),
		user("a", "Al@example.com", scimv1.PlannedChange{Action: scimv1.PlanPromote, Field: "role", New: "Admin"}),
	}
	got := text(t, &plan.Plan{Tenants: []plan.Tenant{plan.Build(settings(scimv1.ModeObserve), users)}})
	g.Expect(strings.Split(got, "\n")[1:8]).To(Equal([]string{
		`  ↑ promote     Al@example.com   (none) → Admin`,
		`  ~ link        bea@example.com  → site account 77`,
		`  ~ update      bea@example.com  department: "R&D" → ""`,
		`  ~ update      bea@example.com  title: "" → "Lead"`,
		`  + activate    bea@example.com`,
		`  ↑ promote     bea@example.com  Registered → Moderator`,
		`Plan: 1 to link, 0 to create, 2 to update, 1 to activate, 0 to deactivate, 2 to promote, 0 to demote, 0 to delete; 0 held.`,
	}))
}

// A user changed since the operator last looked at it has an unknown plan: the plan is
// incomplete and says who. Planned changes count as an evaluation (observedGeneration
// stays behind in Observe mode), unless the Synced condition dates them to an older spec.
func TestBuild_notYetEvaluatedMakesThePlanIncomplete(t *testing.T) {
	g := NewWithT(t)
	fresh := user("fresh", "fresh@example.com")
	fresh.Status.ObservedGeneration = 0
	planned := user("planned", "planned@example.com", scimv1.PlannedChange{Action: scimv1.PlanCreate})
	planned.Status.ObservedGeneration = 1
	planned.Status.Conditions = synced(scimv1.ReasonObserveOnly, 3)
	stale := user("stale", "stale@example.com", scimv1.PlannedChange{Action: scimv1.PlanCreate})
	stale.Status.ObservedGeneration = 1
	stale.Status.Conditions = synced(scimv1.ReasonObserveOnly, 2)
	other := user("other", "other@example.com")
	other.Spec.SettingsRef.Name = "entra" // another tenant's: ignored
	other.Status.ObservedGeneration = 0

	tn := plan.Build(settings(scimv1.ModeObserve), []scimv1.StackUser{stale, fresh, planned, other})
	g.Expect(tn.NotEvaluated).To(Equal([]string{"fresh@example.com", "stale@example.com"}))
	g.Expect(tn.Complete()).To(BeFalse())
	g.Expect(tn.Changes).To(HaveLen(1))
	g.Expect(tn.Changes[0].UserName).To(Equal("planned@example.com"))
	out := text(t, &plan.Plan{Tenants: []plan.Tenant{tn}})
	g.Expect(out).To(HaveSuffix("Plan incomplete: 2 StackUsers not yet evaluated since their last change: fresh@example.com, stale@example.com.\n"))
}

func TestBuild_settingsChangedSinceReconciledMakesThePlanIncomplete(t *testing.T) {
	g := NewWithT(t)
	s := settings(scimv1.ModeObserve)
	s.Generation = 3 // switched to Observe; the operator has not caught up
	tn := plan.Build(s, nil)
	g.Expect(tn.Complete()).To(BeFalse())
	g.Expect(tn.IncompleteReason()).To(Equal("the ScimSettings changed since the operator last reconciled it"))
}

// Offboardings waiting (a deleted StackUser whose deactivation is planned or held) are
// shown, marked, and held only for the actions the brake holds.
func TestBuild_deletedUsersAreOffboardingsAndTheBrakeHoldsOnlyLockOuts(t *testing.T) {
	g := NewWithT(t)
	gone := user("gone", "gone@example.com",
		scimv1.PlannedChange{Action: scimv1.PlanDemote, Field: "role", Old: "Moderator", New: "Registered"},
		scimv1.PlannedChange{Action: scimv1.PlanDeactivate, Field: "active", Old: "true", New: "false"})
	now := metav1.Now()
	gone.DeletionTimestamp = &now
	gone.Generation = 4 // deletion bumps it; planned changes still count as evaluated
	gone.Status.Conditions = synced(scimv1.ReasonChangeHeld, 0)
	mixed := user("mixed", "mixed@example.com",
		scimv1.PlannedChange{Action: scimv1.PlanUpdate, Field: "title", Old: "A", New: "B"},
		scimv1.PlannedChange{Action: scimv1.PlanDeactivate, Field: "active", Old: "true", New: "false"})
	mixed.Status.HeldSince = &heldAt

	tn := plan.Build(settings(""), []scimv1.StackUser{mixed, gone})
	g.Expect(tn.Complete()).To(BeTrue())
	g.Expect(tn.Counts).To(Equal(plan.Counts{Users: 2, Update: 1, Deactivate: 2, Demote: 1, Held: 2}))
	lines := strings.Split(text(t, &plan.Plan{Tenants: []plan.Tenant{tn}}), "\n")
	g.Expect(lines[1:5]).To(Equal([]string{
		`  - deactivate  gone@example.com   (held by the brake)  (StackUser deleted: offboarding)`,
		`  ↓ demote      gone@example.com   Moderator → Registered  (held by the brake)  (StackUser deleted: offboarding)`,
		`  ~ update      mixed@example.com  title: "A" → "B"`,
		`  - deactivate  mixed@example.com  (held by the brake since 2026-11-29T09:12:00Z)`,
	}))
}

// Values come from identity providers and the site: escape codes and newlines are shown
// quoted, never sent to the terminal.
func TestText_controlCharactersAreQuoted(t *testing.T) {
	g := NewWithT(t)
	u := user("x", "evil\x1b[31m@example.com", scimv1.PlannedChange{Action: scimv1.PlanUpdate, Field: "title", Old: "a\nb", New: "\x07"})
	out := text(t, &plan.Plan{Tenants: []plan.Tenant{plan.Build(settings(""), []scimv1.StackUser{u})}})
	g.Expect(out).NotTo(ContainSubstring("\x1b"))
	g.Expect(out).NotTo(ContainSubstring("\x07"))
	g.Expect(out).To(ContainSubstring(`"evil\x1b[31m@example.com"  title: "a\nb" → "\a"`))
}

// Tenants print one block each, in the order given, separated by a blank line; the JSON
// form carries the same typed plan with empty lists as [] (never null) for scripts.
func TestRender_severalTenantsAndJSON(t *testing.T) {
	g := NewWithT(t)
	a := settings(scimv1.ModeObserve)
	b := settings("")
	b.Namespace, b.Name = "team-b", "entra"
	p := &plan.Plan{Tenants: []plan.Tenant{
		plan.Build(a, []scimv1.StackUser{user("al", "al@example.com", scimv1.PlannedChange{Action: scimv1.PlanCreate})}),
		plan.Build(b, nil),
	}}
	out := text(t, p)
	g.Expect(out).To(ContainSubstring("; 0 held.\n\nTenant team-b/entra  (mode Enforce,"))

	var buf bytes.Buffer
	g.Expect(plan.JSON(&buf, p)).To(Succeed())
	var back struct {
		Tenants []struct {
			Namespace, Name, Mode string
			Changes               []map[string]any
			NotEvaluated          []string
			Counts                map[string]int
			SiteOnly              struct {
				Count  int
				Sample []any
			}
		}
	}
	g.Expect(json.Unmarshal(buf.Bytes(), &back)).To(Succeed())
	g.Expect(back.Tenants).To(HaveLen(2))
	g.Expect(back.Tenants[0].Mode).To(Equal("Observe"))
	g.Expect(back.Tenants[0].Changes).To(Equal([]map[string]any{{"userName": "al@example.com", "stackUser": "al", "action": "Create"}}))
	g.Expect(back.Tenants[0].Counts).To(HaveKeyWithValue("create", 1))
	g.Expect(back.Tenants[1].Mode).To(Equal("Enforce"))
	g.Expect(buf.String()).To(ContainSubstring(`"changes": []`))
	g.Expect(buf.String()).To(ContainSubstring(`"notEvaluated": []`))
	g.Expect(buf.String()).NotTo(ContainSubstring("null"))
}

// Site accounts counted by the last resync that a StackUser describes by now (created
// since, or planned to link) are not shown as left alone.
func TestBuild_siteOnlyLeavesOutAccountsDescribedSinceTheResync(t *testing.T) {
	g := NewWithT(t)
	s := settings(scimv1.ModeObserve)
	resync := metav1.NewTime(time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC))
	s.Status.LastResyncTime = &resync
	s.Status.Users = &scimv1.UserCounts{SiteOnly: 5}
	s.Status.SiteOnlyUsers = []scimv1.SiteAccountSample{
		{ID: "1", UserName: "ann@example.com", Active: true},
		{ID: "2", UserName: "bo@example.com", Active: true},
		{ID: "3", UserName: "cat@example.com", Active: true},
	}
	bo := user("bo", "BO@example.com")
	linker := user("x", "x@example.com", scimv1.PlannedChange{Action: scimv1.PlanLink, Field: "siteId", New: "3"})
	tn := plan.Build(s, []scimv1.StackUser{bo, linker})
	g.Expect(tn.SiteOnly.Count).To(Equal(3))
	g.Expect(tn.SiteOnly.Sample).To(HaveLen(1))
	g.Expect(tn.SiteOnly.Sample[0].UserName).To(Equal("ann@example.com"))
	out := text(t, &plan.Plan{Tenants: []plan.Tenant{tn}})
	g.Expect(out).To(ContainSubstring("3 site accounts no StackUser describes (left unchanged; found by the resync at 2026-11-29T08:00:00Z): ann@example.com (id 1) and 2 more."))
}
