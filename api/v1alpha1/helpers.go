package v1alpha1

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// IsEnabled reports whether the tenant accepts SCIM requests.
func (s *ScimSettings) IsEnabled() bool { return s.Spec.Enabled == nil || *s.Spec.Enabled }

// EffectiveBasePath is the tenant's SCIM base path: spec.basePath, or the default
// /scim/v2/<namespace>/<name>.
func (s *ScimSettings) EffectiveBasePath() string {
	if s.Spec.BasePath != "" {
		return s.Spec.BasePath
	}
	return fmt.Sprintf("/scim/v2/%s/%s", s.Namespace, s.Name)
}

// EffectiveHistoryLimit is spec.historyLimit with its default applied.
func (s *ScimSettings) EffectiveHistoryLimit() int {
	if s.Spec.HistoryLimit <= 0 {
		return 20
	}
	return int(s.Spec.HistoryLimit)
}

// EffectiveResyncPeriod is spec.resyncPeriod with its default applied.
func (s *ScimSettings) EffectiveResyncPeriod() time.Duration {
	if s.Spec.ResyncPeriod == nil || s.Spec.ResyncPeriod.Duration <= 0 {
		return 10 * time.Minute
	}
	return s.Spec.ResyncPeriod.Duration
}

// EffectiveDriftPolicy is spec.driftPolicy with its default applied.
func (s *ScimSettings) EffectiveDriftPolicy() DriftPolicy {
	if s.Spec.DriftPolicy == "" {
		return DriftEnforce
	}
	return s.Spec.DriftPolicy
}

// EffectiveDeletionPolicy is spec.deletionPolicy with its default applied.
func (s *ScimSettings) EffectiveDeletionPolicy() DeletionPolicy {
	if s.Spec.DeletionPolicy == "" {
		return DeletionDeactivate
	}
	return s.Spec.DeletionPolicy
}

// PromotionAllowed reports whether a role change from one role to another may be
// enforced: every non-Registered role involved needs its promotion switch on.
func (s *ScimSettings) PromotionAllowed(from, to Role) bool {
	for _, r := range []Role{from, to} {
		switch r {
		case RoleModerator:
			if !s.Spec.AllowModeratorPromotion {
				return false
			}
		case RoleAdmin:
			if !s.Spec.AllowAdminPromotion {
				return false
			}
		}
	}
	return true
}

// IsActive reports whether the user should be able to sign in (active defaults to true).
func (u *StackUser) IsActive() bool { return u.Spec.Active == nil || *u.Spec.Active }

// MapsGroups reports whether the tenant derives roles from group membership
// (spec.groupRoles is set), so that every user's role is managed.
func (s *ScimSettings) MapsGroups() bool { return len(s.Spec.GroupRoles) > 0 }

// EffectiveGroupRole is the role spec.groupRoles gives the members of the group with this
// displayName (compared case-insensitively); false when the group is not mapped.
func (s *ScimSettings) EffectiveGroupRole(displayName string) (Role, bool) {
	for _, gr := range s.Spec.GroupRoles {
		if strings.EqualFold(gr.Group, displayName) {
			return gr.Role, true
		}
	}
	return "", false
}

// HigherRole returns the more privileged of two roles (Admin > Moderator > Registered);
// an empty role counts as none.
func HigherRole(a, b Role) Role {
	if slices.Index(Roles, b) > slices.Index(Roles, a) {
		return b
	}
	return a
}

// MemberLabel is the label key that marks a StackUser as a member of this group; its
// value is the group's UID.
func (g *StackGroup) MemberLabel() string { return LabelGroupPrefix + g.Name }

// SecretNames lists the Secrets the tenant refers to: the IdP bearer token Secret, then
// the site token Secret when it is another one.
func (s *ScimSettings) SecretNames() []string {
	names := []string{s.Spec.BearerTokenSecretRef.Name}
	if n := s.Spec.Site.TokenSecretRef.Name; n != names[0] {
		names = append(names, n)
	}
	return names
}
