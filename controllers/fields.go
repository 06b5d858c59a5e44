package controllers

import (
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/site"
)

// fieldSpec is one attribute the operator enforces on the site: how to read what the
// StackUser wants, what the site has, what status.site last recorded, and how to write it.
type fieldSpec struct {
	// name is the attribute as audit entries and conditions name it.
	name string
	// path is the PATCH path on the site.
	path string
	// fold compares case-insensitively.
	fold bool
	// want is the desired value; false when the StackUser does not manage the attribute
	// (no role, or an empty profile field: the IdP did not send it, so the site keeps its own).
	want func(*scimv1.StackUser) (string, bool)
	have func(*site.User) string
	seen func(*scimv1.ObservedSiteUser) string
	// value converts a desired value to the PATCH value.
	value func(string) any
}

func (f *fieldSpec) equal(a, b string) bool {
	if f.fold {
		return strings.EqualFold(a, b)
	}
	return a == b
}

func str(v string) any { return v }

func optional(get func(*scimv1.StackUser) string) func(*scimv1.StackUser) (string, bool) {
	return func(u *scimv1.StackUser) (string, bool) {
		v := get(u)
		return v, v != ""
	}
}

func givenName(u *scimv1.StackUser) string {
	if u.Spec.Name == nil {
		return ""
	}
	return u.Spec.Name.GivenName
}

func familyName(u *scimv1.StackUser) string {
	if u.Spec.Name == nil {
		return ""
	}
	return u.Spec.Name.FamilyName
}

// primaryEmail is the primary address, or the first one when none is marked.
func primaryEmail(u *scimv1.StackUser) string {
	for _, e := range u.Spec.Emails {
		if e.Primary {
			return e.Value
		}
	}
	if len(u.Spec.Emails) > 0 {
		return u.Spec.Emails[0].Value
	}
	return ""
}

var (
	fieldActive = &fieldSpec{
		name: "active", path: site.PathActive,
		want:  func(u *scimv1.StackUser) (string, bool) { return strconv.FormatBool(u.IsActive()), true },
		have:  func(s *site.User) string { return strconv.FormatBool(s.Active) },
		seen:  func(o *scimv1.ObservedSiteUser) string { return boolString(o.Active) },
		value: func(v string) any { return v == "true" },
	}
	fieldRole = &fieldSpec{
		name: "role", path: site.PathUserType,
		// The role the last reconcile derived from spec.role and the user's mapped groups
		// (resolveGroups), else spec.role.
		want: func(u *scimv1.StackUser) (string, bool) {
			if u.Status.EffectiveRole != "" {
				return u.Status.EffectiveRole, true
			}
			if u.Spec.Role == nil {
				return "", false
			}
			return string(*u.Spec.Role), true
		},
		have:  func(s *site.User) string { return s.Role },
		seen:  func(o *scimv1.ObservedSiteUser) string { return string(o.Role) },
		value: str,
	}
	// profileFields are written together in one PATCH with active and role.
	profileFields = []*fieldSpec{
		{
			name: "displayName", path: site.PathDisplayName,
			want: optional(func(u *scimv1.StackUser) string { return u.Spec.DisplayName }),
			have: func(s *site.User) string { return s.DisplayName },
			seen: func(o *scimv1.ObservedSiteUser) string { return o.DisplayName }, value: str,
		},
		{
			name: "name.givenName", path: site.PathGivenName,
			want: optional(givenName),
			have: func(s *site.User) string { return s.GivenName },
			seen: func(o *scimv1.ObservedSiteUser) string { return o.GivenName }, value: str,
		},
		{
			name: "name.familyName", path: site.PathFamilyName,
			want: optional(familyName),
			have: func(s *site.User) string { return s.FamilyName },
			seen: func(o *scimv1.ObservedSiteUser) string { return o.FamilyName }, value: str,
		},
		{
			name: "email", path: site.PathEmails, fold: true,
			want:  optional(primaryEmail),
			have:  func(s *site.User) string { return s.Email },
			seen:  func(o *scimv1.ObservedSiteUser) string { return o.Email },
			value: func(v string) any { return site.EmailValue(v) },
		},
		{
			name: "title", path: site.PathTitle,
			want: optional(func(u *scimv1.StackUser) string { return u.Spec.Title }),
			have: func(s *site.User) string { return s.Title },
			seen: func(o *scimv1.ObservedSiteUser) string { return o.Title }, value: str,
		},
		{
			name: "department", path: site.PathDepartment,
			want: optional(func(u *scimv1.StackUser) string { return u.Spec.Department }),
			have: func(s *site.User) string { return s.Department },
			seen: func(o *scimv1.ObservedSiteUser) string { return o.Department }, value: str,
		},
		{
			// A userName change at the IdP renames the site account (its SAML user
			// identifier): the same account, patched. Case-only changes are not sent: the
			// site compares user names without case.
			name: "userName", path: site.PathUserName, fold: true,
			want: optional(func(u *scimv1.StackUser) string { return u.Spec.UserName }),
			have: func(s *site.User) string { return s.UserName },
			seen: func(o *scimv1.ObservedSiteUser) string { return o.UserName }, value: str,
		},
		{
			name: "externalId", path: site.PathExternalID,
			want: optional(func(u *scimv1.StackUser) string { return u.Spec.ExternalID }),
			have: func(s *site.User) string { return s.ExternalID },
			seen: func(o *scimv1.ObservedSiteUser) string { return o.ExternalID }, value: str,
		},
	}
	allFields = append([]*fieldSpec{fieldActive, fieldRole}, profileFields...)
)

func boolString(b *bool) string {
	if b == nil {
		return ""
	}
	return strconv.FormatBool(*b)
}

// fieldDiff is one attribute where the site differs from the StackUser.
type fieldDiff struct {
	field      *fieldSpec
	want, have string
}

// diffSite lists the managed attributes where the site user differs from the StackUser.
func diffSite(u *scimv1.StackUser, su *site.User) []fieldDiff {
	var out []fieldDiff
	for _, f := range allFields {
		want, managed := f.want(u)
		if !managed {
			continue
		}
		if have := f.have(su); !f.equal(want, have) {
			out = append(out, fieldDiff{field: f, want: want, have: have})
		}
	}
	return out
}

// observe records a site user in status.site.
func observe(su *site.User, now metav1.Time) *scimv1.ObservedSiteUser {
	active := su.Active
	return &scimv1.ObservedSiteUser{
		Active:      &active,
		Role:        scimv1.Role(su.Role),
		UserName:    su.UserName,
		ExternalID:  su.ExternalID,
		DisplayName: su.DisplayName,
		GivenName:   su.GivenName,
		FamilyName:  su.FamilyName,
		Email:       su.Email,
		Title:       su.Title,
		Department:  su.Department,
		SyncTime:    &now,
	}
}

// desiredSiteUser is the site user to create for a StackUser (without the role, which is
// written and read back separately).
func desiredSiteUser(u *scimv1.StackUser) site.User {
	return site.User{
		ExternalID:  u.Spec.ExternalID,
		UserName:    u.Spec.UserName,
		DisplayName: u.Spec.DisplayName,
		GivenName:   givenName(u),
		FamilyName:  familyName(u),
		Email:       primaryEmail(u),
		Active:      u.IsActive(),
		Title:       u.Spec.Title,
		Department:  u.Spec.Department,
	}
}
