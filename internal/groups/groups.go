// Package groups stores SCIM group membership and turns it into roles.
//
// Storage. A group is a StackGroup (display name, externalId); its members are not listed
// on it. Each member StackUser carries the label
// `group.scim.stackscim.io/<StackGroup name>` whose value is the group's UID. Why labels:
//   - etcd refuses objects over 1.5 MiB, and a 100,000-member list of ids is several
//     megabytes; sharding the list over several objects would still rewrite a large
//     object (and fight over one resourceVersion) for every member Okta or Entra adds.
//   - A label costs one small merge patch on the one user that joins or leaves: O(1) API
//     writes per member, with no lock on anything shared, so members of one group are
//     written in parallel. The same patch carries the request's pending audit entry
//     (internal/audit), so the membership and its audit record land together.
//   - The StackUser reconciler already watches users: a label change is the event that
//     re-evaluates the member's role, with no request from the IdP for the user.
//   - A group's members are found through a cache index on the label (index.UserGroup),
//     without reading every user; `kubectl get su -l group.scim.stackscim.io/<name>`
//     lists them too.
//   - The value is the group's UID, so a label left behind by a deleted group never makes
//     a user a member of a new group that got the same name. A group's finalizer removes
//     its labels when it is deleted.
//
// The trade-off: a user can be in at most a few hundred groups (labels share the
// object's 256 KiB metadata budget), which IdPs that push only selected groups stay far
// below.
package groups

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/audit"
	"github.com/stackscim/stack-scim-operator/internal/index"
)

// Finalizer is put on every StackGroup so that deleting it removes its members' labels.
const Finalizer = "scim.stackscim.io/group-members"

// AnnotationLastRequest holds, as JSON Request, the SCIM group request that last changed
// the user's memberships, so the role change that follows can name the group and the
// request. It is apart from audit.AnnotationLastSCIMRequest, which attributes spec changes:
// a membership changes no spec.
const AnnotationLastRequest = "scim.stackscim.io/last-group-request"

// Request is the SCIM group request that changed a user's membership.
type Request struct {
	audit.RequestInfo `json:",inline"`
	// Group is the display name of the group.
	Group string `json:"group,omitempty"`
	// Joined is true when the user was added, false when removed.
	Joined bool `json:"joined"`
}

// LastRequest reads the user's AnnotationLastRequest.
func LastRequest(u *scimv1.StackUser) (Request, bool) {
	var r Request
	raw := u.Annotations[AnnotationLastRequest]
	if raw == "" || json.Unmarshal([]byte(raw), &r) != nil {
		return Request{}, false
	}
	return r, true
}

// EncodeRequest is the AnnotationLastRequest value of r.
func EncodeRequest(r Request) string {
	b, _ := json.Marshal(r)
	return string(b)
}

// NameFor is the object name a SCIM POST gives a group: a hash of tenant and lower-cased
// displayName, so concurrent duplicate POSTs race for one name and the API server lets one
// win. Short enough to fit a label key's 63-character name part.
func NameFor(tenant, displayName string) string {
	sum := sha256.Sum256([]byte(tenant + "\x00" + strings.ToLower(displayName)))
	return "g-" + hex.EncodeToString(sum[:])[:20]
}

// IsMember reports whether the user carries the group's membership label.
func IsMember(u *scimv1.StackUser, g *scimv1.StackGroup) bool {
	v, ok := u.Labels[g.MemberLabel()]
	return ok && v == string(g.UID)
}

// Live reports whether a group serves its tenant: it belongs to it and is not being
// deleted.
func Live(g *scimv1.StackGroup, tenant string) bool {
	return g.DeletionTimestamp == nil && g.Spec.SettingsRef.Name == tenant
}

// Members lists a group's members from the cache index, ordered by id. The users are the
// cache's own: callers must not change them.
func Members(ctx context.Context, r client.Reader, g *scimv1.StackGroup) ([]*scimv1.StackUser, error) {
	var list scimv1.StackUserList
	if err := r.List(ctx, &list, client.InNamespace(g.Namespace),
		client.MatchingFields{index.UserGroup: index.GroupMemberKey(g.Name, string(g.UID))}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	out := make([]*scimv1.StackUser, 0, len(list.Items))
	for i := range list.Items {
		u := &list.Items[i]
		if u.DeletionTimestamp == nil && u.Spec.SettingsRef.Name == g.Spec.SettingsRef.Name {
			out = append(out, u)
		}
	}
	slices.SortFunc(out, func(a, b *scimv1.StackUser) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Of returns the live groups of the user's tenant it is a member of, ordered by display
// name. Labels of deleted, deleting or replaced groups are skipped.
func Of(ctx context.Context, r client.Reader, u *scimv1.StackUser) ([]*scimv1.StackGroup, error) {
	var out []*scimv1.StackGroup
	for k, v := range u.Labels {
		name, ok := strings.CutPrefix(k, scimv1.LabelGroupPrefix)
		if !ok {
			continue
		}
		g := &scimv1.StackGroup{}
		if err := r.Get(ctx, types.NamespacedName{Namespace: u.Namespace, Name: name}, g); err != nil {
			if client.IgnoreNotFound(err) == nil {
				continue
			}
			return nil, err
		}
		if string(g.UID) == v && Live(g, u.Spec.SettingsRef.Name) {
			out = append(out, g)
		}
	}
	slices.SortFunc(out, func(a, b *scimv1.StackGroup) int {
		return strings.Compare(strings.ToLower(a.Spec.DisplayName), strings.ToLower(b.Spec.DisplayName))
	})
	return out, nil
}

// Role is the role the operator enforces for a user in these groups: with groupRoles set,
// the highest of its own role and the mapped groups' roles, Registered when it has none;
// without, its own role. managed is false when the role is left to the site. source says
// where the role comes from, for conditions and audit messages.
func Role(settings *scimv1.ScimSettings, u *scimv1.StackUser, groups []*scimv1.StackGroup) (role scimv1.Role, managed bool, source string) {
	if u.Spec.Role != nil {
		role, source = *u.Spec.Role, "the role attribute"
	}
	if !settings.MapsGroups() {
		return role, role != "", source
	}
	for _, g := range groups {
		gr, ok := settings.EffectiveGroupRole(g.Spec.DisplayName)
		if !ok {
			continue
		}
		if higher := scimv1.HigherRole(role, gr); higher != role {
			role, source = higher, fmt.Sprintf("group %q", g.Spec.DisplayName)
		}
	}
	if role == "" {
		return scimv1.RoleRegistered, true, "no role attribute and no mapped group (spec.groupRoles)"
	}
	return role, true, source
}

// Memberships is the user's groups as StackUser status shows them.
func Memberships(groups []*scimv1.StackGroup) []scimv1.GroupMembership {
	if len(groups) == 0 {
		return nil
	}
	out := make([]scimv1.GroupMembership, len(groups))
	for i, g := range groups {
		out[i] = scimv1.GroupMembership{Name: g.Name, DisplayName: g.Spec.DisplayName}
	}
	return out
}
