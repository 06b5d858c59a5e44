package userview

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func user(ns, tenant, name string, createdSec int) *scimv1.StackUser {
	return &scimv1.StackUser{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: metav1.NewTime(epoch.Add(time.Duration(createdSec) * time.Second))},
		Spec:       scimv1.StackUserSpec{SettingsRef: scimv1.SettingsReference{Name: tenant}, UserName: name},
	}
}

func names(us []*scimv1.StackUser) []string {
	var out []string
	for _, u := range us {
		out = append(out, u.Name)
	}
	return out
}

func TestView_ordersByCreationThenNameAndPages(t *testing.T) {
	g := NewWithT(t)
	v := New()
	v.OnAdd(user("ns", "okta", "c", 2), true)
	v.OnAdd(user("ns", "okta", "b", 1), true)
	v.OnAdd(user("ns", "okta", "a", 2), true)
	v.OnAdd(user("ns", "entra", "z", 0), true)
	v.OnAdd(user("other", "okta", "y", 0), true)

	g.Expect(names(v.All("ns", "okta"))).To(Equal([]string{"b", "a", "c"}))
	total, page := v.Page("ns", "okta", 1, 5)
	g.Expect(total).To(Equal(3))
	g.Expect(names(page)).To(Equal([]string{"a", "c"}))
	total, page = v.Page("ns", "okta", 3, 5)
	g.Expect(total).To(Equal(3))
	g.Expect(page).To(BeEmpty())
	g.Expect(v.Count("ns", "entra")).To(Equal(1))
	g.Expect(v.Count("other", "okta")).To(Equal(1))
	g.Expect(v.Count("ns", "nobody")).To(Equal(0))
}

func TestView_updatesReplaceAndMoveBetweenTenants(t *testing.T) {
	g := NewWithT(t)
	v := New()
	a := user("ns", "okta", "a", 1)
	v.OnAdd(a, true)
	v.OnAdd(user("ns", "okta", "b", 2), true)

	a2 := a.DeepCopy()
	a2.Spec.Title = "CTO"
	v.OnUpdate(a, a2)
	g.Expect(v.All("ns", "okta")[0].Spec.Title).To(Equal("CTO"), "an update replaces the user in place")

	a3 := a2.DeepCopy()
	a3.Spec.SettingsRef.Name = "entra"
	v.OnUpdate(a2, a3)
	g.Expect(names(v.All("ns", "okta"))).To(Equal([]string{"b"}))
	g.Expect(names(v.All("ns", "entra"))).To(Equal([]string{"a"}))

	v.OnDelete(toolscache.DeletedFinalStateUnknown{Key: "ns/a", Obj: a3})
	g.Expect(v.Count("ns", "entra")).To(Equal(0))
	v.OnDelete(user("ns", "okta", "b", 2))
	g.Expect(v.Count("ns", "okta")).To(Equal(0))
}

// TestView_randomEventsMatchASortedList drives the view with random adds, updates and
// deletes and compares it, and its externalId lookups, with the users computed from
// scratch.
func TestView_randomEventsMatchASortedList(t *testing.T) {
	g := NewWithT(t)
	v := New()
	live := map[string]*scimv1.StackUser{}
	r := rand.New(rand.NewPCG(1, 2))
	// A few shared and empty externalIds, so lookups see duplicates and changes.
	externalID := func() string { return []string{"", "e1", "e2", "e3"}[r.IntN(4)] + fmt.Sprint(r.IntN(100)) }
	for i := range 5000 {
		name := fmt.Sprintf("u%03d", r.IntN(300))
		prev, exists := live[name]
		switch {
		case !exists:
			u := user("ns", "okta", name, r.IntN(50))
			u.Spec.ExternalID = externalID()
			live[name] = u
			v.OnAdd(u, false)
		case r.IntN(3) == 0:
			delete(live, name)
			v.OnDelete(prev)
		default:
			u := prev.DeepCopy()
			u.Spec.Title = fmt.Sprint(i)
			if r.IntN(2) == 0 {
				u.Spec.ExternalID = externalID()
			}
			live[name] = u
			v.OnUpdate(prev, u)
		}
	}
	want := make([]*scimv1.StackUser, 0, len(live))
	for _, u := range live {
		want = append(want, u)
	}
	slices.SortFunc(want, Compare)
	got := v.All("ns", "okta")
	g.Expect(names(got)).To(Equal(names(want)))
	for i := range got {
		g.Expect(got[i]).To(BeIdenticalTo(want[i]), "the view holds the latest object")
	}
	for _, id := range []string{"e10", "e25", "e37", "12"} {
		withID := slices.DeleteFunc(slices.Clone(want), func(u *scimv1.StackUser) bool { return u.Spec.ExternalID != id })
		g.Expect(names(v.ByExternalID("ns", "okta", id))).To(Equal(names(withID)), "users with externalId %q", id)
	}
	g.Expect(v.ByExternalID("ns", "okta", "")).To(BeEmpty(), "an empty externalId matches nobody")
}

// Identities moves when what decides a site account's owner changes, and not on the
// reconciler's other status writes.
func TestView_identitiesChangeOnlyWithUserNameExternalIDOrSiteID(t *testing.T) {
	g := NewWithT(t)
	v := New()
	g.Expect(v.Identities("ns", "okta")).To(BeZero())
	a := user("ns", "okta", "a", 1)
	v.OnAdd(a, true)
	added := v.Identities("ns", "okta")
	g.Expect(added).NotTo(BeZero())

	b := a.DeepCopy()
	b.Status.ObservedGeneration = 7
	b.Spec.Title = "CTO"
	v.OnUpdate(a, b)
	g.Expect(v.Identities("ns", "okta")).To(Equal(added), "a status write of other fields")

	last := added
	for _, change := range []func(*scimv1.StackUser){
		func(u *scimv1.StackUser) { u.Status.SiteID = "42" },
		func(u *scimv1.StackUser) { u.Spec.ExternalID = "00u1" },
		func(u *scimv1.StackUser) { u.Spec.UserName = "A" },
	} {
		c := b.DeepCopy()
		change(c)
		v.OnUpdate(b, c)
		g.Expect(v.Identities("ns", "okta")).NotTo(Equal(last))
		last, b = v.Identities("ns", "okta"), c
	}
	v.OnAdd(user("ns", "okta", "b", 2), true)
	g.Expect(v.Identities("ns", "okta")).NotTo(Equal(last))
	last = v.Identities("ns", "okta")
	v.OnDelete(user("ns", "okta", "b", 2))
	g.Expect(v.Identities("ns", "okta")).NotTo(Equal(last))
	g.Expect(v.Identities("ns", "entra")).To(BeZero())
}
