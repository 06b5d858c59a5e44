// Package plan builds a tenant's plan — the changes the operator would make on the site
// (Observe mode) or holds back (the deactivation brake) — from the typed ScimSettings and
// StackUsers, and renders it for people (Terraform-style text) and for programs (JSON).
// It reads only what the reconcilers wrote in status; it never talks to the site.
package plan

import (
	"cmp"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
)

// Reasons of the StackUser Synced condition that the plan reads.
// Plan is the plan of one or more tenants, sorted by namespace and name.
type Plan struct {
	// Tenants holds one entry per ScimSettings.
	Tenants []Tenant `json:"tenants"`
}

// Tenant is the plan of one ScimSettings.
type Tenant struct {
	// Namespace and Name identify the ScimSettings.
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Mode is the effective spec.mode.
	Mode scimv1.Mode `json:"mode"`
	// SiteURL is spec.site.url.
	SiteURL string `json:"siteURL"`
	// Changes lists every planned or held change, sorted by userName, then by the order
	// of scimv1.PlanActions, then by field.
	Changes []Change `json:"changes"`
	// Counts sums Changes.
	Counts Counts `json:"counts"`
	// NotEvaluated names (by userName, sorted) the StackUsers changed since the operator
	// last evaluated them: their plan is unknown.
	NotEvaluated []string `json:"notEvaluated"`
	// SettingsNotEvaluated is set while the ScimSettings' spec changed since the operator
	// last reconciled it (status.observedGeneration behind metadata.generation).
	SettingsNotEvaluated bool `json:"settingsNotEvaluated,omitempty"`
	// SiteOnly describes the site accounts no StackUser describes; they are never changed.
	SiteOnly SiteOnly `json:"siteOnly"`
}

// Change is one planned or held change to one user's site account.
type Change struct {
	// UserName is the StackUser's spec.userName.
	UserName string `json:"userName"`
	// StackUser is the StackUser's object name.
	StackUser string `json:"stackUser"`
	// Action is the kind of change.
	Action scimv1.PlanAction `json:"action"`
	// Field, Old and New are as in status.plannedChanges.
	Field string `json:"field,omitempty"`
	Old   string `json:"old,omitempty"`
	New   string `json:"new,omitempty"`
	// Held is set when the brake holds this change (a deactivation or demotion of a held
	// user); HeldSince is when the hold began.
	Held      bool         `json:"held,omitempty"`
	HeldSince *metav1.Time `json:"heldSince,omitempty"`
	// Offboarding is set when the StackUser is being deleted and the change is its
	// offboarding, waiting.
	Offboarding bool `json:"offboarding,omitempty"`
}

// Counts sums a tenant's changes: one per change line, except Users and Held, which count
// users.
type Counts struct {
	// Users is the number of StackUsers with planned or held changes.
	Users int `json:"users"`
	// One count per action.
	Link       int `json:"link"`
	Create     int `json:"create"`
	Update     int `json:"update"`
	Activate   int `json:"activate"`
	Deactivate int `json:"deactivate"`
	Promote    int `json:"promote"`
	Demote     int `json:"demote"`
	Delete     int `json:"delete"`
	// Held is the number of StackUsers whose changes the brake holds.
	Held int `json:"held"`
}

// Of returns the count of one action.
func (c Counts) Of(a scimv1.PlanAction) int {
	switch a {
	case scimv1.PlanLink:
		return c.Link
	case scimv1.PlanCreate:
		return c.Create
	case scimv1.PlanUpdate:
		return c.Update
	case scimv1.PlanActivate:
		return c.Activate
	case scimv1.PlanDeactivate:
		return c.Deactivate
	case scimv1.PlanPromote:
		return c.Promote
	case scimv1.PlanDemote:
		return c.Demote
	case scimv1.PlanDelete:
		return c.Delete
	}
	return 0
}

func (c *Counts) add(a scimv1.PlanAction) {
	switch a {
	case scimv1.PlanLink:
		c.Link++
	case scimv1.PlanCreate:
		c.Create++
	case scimv1.PlanUpdate:
		c.Update++
	case scimv1.PlanActivate:
		c.Activate++
	case scimv1.PlanDeactivate:
		c.Deactivate++
	case scimv1.PlanPromote:
		c.Promote++
	case scimv1.PlanDemote:
		c.Demote++
	case scimv1.PlanDelete:
		c.Delete++
	}
}

// SiteOnly is status.users.siteOnly and status.siteOnlyUsers of the ScimSettings.
type SiteOnly struct {
	// Count is the number of site accounts no StackUser describes.
	Count int `json:"count"`
	// Sample names the first of them.
	Sample []scimv1.SiteAccountSample `json:"sample"`
	// AsOf is the resync that counted them: StackUsers created since may describe some
	// (those are left out of Sample and Count).
	AsOf *metav1.Time `json:"asOf,omitempty"`
}

// Changed reports whether any tenant has a planned or held change.
func (p *Plan) Changed() bool {
	for i := range p.Tenants {
		if p.Tenants[i].Changed() {
			return true
		}
	}
	return false
}

// Complete reports whether every tenant is fully evaluated.
func (p *Plan) Complete() bool {
	for i := range p.Tenants {
		if !p.Tenants[i].Complete() {
			return false
		}
	}
	return true
}

// Changed reports whether the tenant has a planned or held change.
func (t *Tenant) Changed() bool { return len(t.Changes) > 0 }

// Complete reports whether the operator has evaluated the tenant and all its users since
// they last changed, so the plan is the whole plan.
func (t *Tenant) Complete() bool { return !t.SettingsNotEvaluated && len(t.NotEvaluated) == 0 }

// Build makes the plan of one tenant from its ScimSettings and the StackUsers that refer
// to it (users of other tenants are ignored, so callers may pass a whole namespace).
func Build(s *scimv1.ScimSettings, users []scimv1.StackUser) Tenant {
	t := Tenant{
		Namespace:            s.Namespace,
		Name:                 s.Name,
		Mode:                 s.EffectiveMode(),
		SiteURL:              s.Spec.Site.URL,
		Changes:              []Change{},
		NotEvaluated:         []string{},
		SettingsNotEvaluated: s.Status.ObservedGeneration < s.Generation,
		SiteOnly:             SiteOnly{Sample: []scimv1.SiteAccountSample{}},
	}
	if s.Status.Users != nil {
		t.SiteOnly.Count = int(s.Status.Users.SiteOnly)
	}
	t.SiteOnly.Sample = append(t.SiteOnly.Sample, s.Status.SiteOnlyUsers...)
	// The sample may be written before the count (two writers); never show fewer.
	t.SiteOnly.Count = max(t.SiteOnly.Count, len(t.SiteOnly.Sample))
	slices.SortStableFunc(t.SiteOnly.Sample, func(a, b scimv1.SiteAccountSample) int {
		return compareNames(a.UserName, b.UserName)
	})

	for i := range users {
		u := &users[i]
		if u.Namespace != s.Namespace || u.Spec.SettingsRef.Name != s.Name {
			continue
		}
		if !evaluated(u) {
			t.NotEvaluated = append(t.NotEvaluated, u.Spec.UserName)
			continue
		}
		if len(u.Status.PlannedChanges) == 0 {
			continue
		}
		held := isHeld(u)
		heldAny := false
		for _, pc := range u.Status.PlannedChanges {
			c := Change{
				UserName:    u.Spec.UserName,
				StackUser:   u.Name,
				Action:      pc.Action,
				Field:       pc.Field,
				Old:         pc.Old,
				New:         pc.New,
				Offboarding: u.DeletionTimestamp != nil,
			}
			// The brake holds only what locks people out.
			if held && (pc.Action == scimv1.PlanDeactivate || pc.Action == scimv1.PlanDemote) {
				c.Held, c.HeldSince, heldAny = true, u.Status.HeldSince, true
			}
			t.Changes = append(t.Changes, c)
			t.Counts.add(pc.Action)
		}
		t.Counts.Users++
		if heldAny {
			t.Counts.Held++
		}
	}
	slices.SortStableFunc(t.Changes, compareChanges)
	slices.SortFunc(t.NotEvaluated, compareNames)
	t.SiteOnly.AsOf = s.Status.LastResyncTime
	t.SiteOnly.dropDescribed(s, users)
	return t
}

// dropDescribed leaves out of the site-only accounts (counted at the last resync) those a
// StackUser of the tenant describes by now: same userName (case-insensitive) or linked id.
func (so *SiteOnly) dropDescribed(s *scimv1.ScimSettings, users []scimv1.StackUser) {
	names, ids := map[string]bool{}, map[string]bool{}
	for i := range users {
		u := &users[i]
		if u.Namespace != s.Namespace || u.Spec.SettingsRef.Name != s.Name {
			continue
		}
		names[strings.ToLower(u.Spec.UserName)] = true
		if u.Status.SiteID != "" {
			ids[u.Status.SiteID] = true
		}
		for _, pc := range u.Status.PlannedChanges {
			if pc.Action == scimv1.PlanLink {
				ids[pc.New] = true
			}
		}
	}
	kept := so.Sample[:0]
	for _, a := range so.Sample {
		if names[strings.ToLower(a.UserName)] || ids[a.ID] {
			so.Count--
			continue
		}
		kept = append(kept, a)
	}
	so.Sample = kept
	so.Count = max(so.Count, len(so.Sample))
}

// evaluated reports whether the operator has looked at the user since its spec last
// changed. status.observedGeneration stays behind while the site is not brought in line
// (Observe mode, held changes), so planned changes count as an evaluation — unless the
// Synced condition says they were planned for an older generation.
func evaluated(u *scimv1.StackUser) bool {
	if u.Status.ObservedGeneration >= u.Generation {
		return true
	}
	if len(u.Status.PlannedChanges) == 0 {
		return false
	}
	g := u.EvaluatedGeneration()
	return g == 0 || g >= u.Generation
}

func isHeld(u *scimv1.StackUser) bool {
	if u.Status.HeldSince != nil {
		return true
	}
	c := meta.FindStatusCondition(u.Status.Conditions, scimv1.ConditionSynced)
	return c != nil && c.Status == metav1.ConditionFalse && c.Reason == scimv1.ReasonChangeHeld
}

func compareChanges(a, b Change) int {
	return cmp.Or(
		compareNames(a.UserName, b.UserName),
		cmp.Compare(a.StackUser, b.StackUser),
		cmp.Compare(actionIndex(a.Action), actionIndex(b.Action)),
		cmp.Compare(a.Field, b.Field),
	)
}

// compareNames sorts userNames case-insensitively (the tenant compares them so), with the
// exact spelling as tie-break so the order is total.
func compareNames(a, b string) int {
	return cmp.Or(cmp.Compare(strings.ToLower(a), strings.ToLower(b)), cmp.Compare(a, b))
}

func actionIndex(a scimv1.PlanAction) int {
	if i := slices.Index(scimv1.PlanActions, a); i >= 0 {
		return i
	}
	return len(scimv1.PlanActions)
}
