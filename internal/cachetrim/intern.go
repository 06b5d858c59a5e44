package cachetrim

import (
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
)

// interner hands out one copy of the short strings that most cached objects repeat:
// condition types, reasons and messages, label and annotation keys, manager names, the
// tenant, roles, titles and departments. Decoding gives every object its own copy; at
// 100,000 users those copies are a fifth of a StackUser's memory. The table is bounded:
// once full, new values are kept as decoded.
type interner struct {
	mu sync.Mutex
	m  map[string]string
}

const (
	maxInterned    = 16384
	maxInternedLen = 256
)

func (in *interner) s(v string) string {
	if v == "" || len(v) > maxInternedLen {
		return v
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if c, ok := in.m[v]; ok {
		return c
	}
	if len(in.m) < maxInterned {
		in.m[v] = v
	}
	return v
}

// keys interns a map's keys, and its values too when values is set.
func (in *interner) keys(m map[string]string, values bool) map[string]string {
	if len(m) == 0 {
		return m
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if values {
			v = in.s(v)
		}
		out[in.s(k)] = v
	}
	return out
}

// meta interns the repeated parts of an object's metadata.
func (in *interner) meta(obj metav1.Object) {
	obj.SetLabels(in.keys(obj.GetLabels(), true))
	obj.SetAnnotations(in.keys(obj.GetAnnotations(), false))
	if f := obj.GetFinalizers(); len(f) > 0 {
		for i := range f {
			f[i] = in.s(f[i])
		}
	}
	if mf := obj.GetManagedFields(); len(mf) > 0 {
		for i := range mf {
			mf[i].Manager, mf[i].APIVersion, mf[i].Subresource = in.s(mf[i].Manager), in.s(mf[i].APIVersion), in.s(mf[i].Subresource)
			mf[i].FieldsType = in.s(mf[i].FieldsType)
		}
	}
}

// user interns the low-variety fields of a StackUser.
func (in *interner) user(u *scimv1.StackUser) {
	u.APIVersion, u.Kind = in.s(u.APIVersion), in.s(u.Kind)
	sp := &u.Spec
	sp.SettingsRef.Name = in.s(sp.SettingsRef.Name)
	sp.RoleAttribute = scimv1.RoleAttributeForm(in.s(string(sp.RoleAttribute)))
	sp.Title, sp.Department = in.s(sp.Title), in.s(sp.Department)
	sp.Locale, sp.PreferredLanguage, sp.Timezone = in.s(sp.Locale), in.s(sp.PreferredLanguage), in.s(sp.Timezone)
	for i := range sp.Emails {
		sp.Emails[i].Type = in.s(sp.Emails[i].Type)
	}
	for i := range sp.PhoneNumbers {
		sp.PhoneNumbers[i].Type = in.s(sp.PhoneNumbers[i].Type)
	}
	st := &u.Status
	for i := range st.Conditions {
		c := &st.Conditions[i]
		c.Type, c.Reason, c.Message = in.s(c.Type), in.s(c.Reason), in.s(c.Message)
	}
	st.EffectiveRole = in.s(st.EffectiveRole)
	if s := st.Site; s != nil {
		s.Role = scimv1.Role(in.s(string(s.Role)))
		s.Title, s.Department = in.s(s.Title), in.s(s.Department)
	}
}
