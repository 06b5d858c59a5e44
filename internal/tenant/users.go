package tenant

import (
	"strings"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
)

// OwnsUserNameBefore reports whether a's claim on its userName comes before b's: the
// older StackUser (creationTimestamp, then name) wins. userName is unique per tenant, but
// StackUsers made with kubectl are not checked by the SCIM server; this makes the
// outcome deterministic.
func OwnsUserNameBefore(a, b *scimv1.StackUser) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}

// UserNameOwner is the live user that owns userName among users of one tenant (all
// with that userName, compared case-insensitively); nil when none is live.
func UserNameOwner(users []scimv1.StackUser) *scimv1.StackUser {
	var owner *scimv1.StackUser
	for i := range users {
		u := &users[i]
		if u.DeletionTimestamp == nil && (owner == nil || OwnsUserNameBefore(u, owner)) {
			owner = u
		}
	}
	return owner
}

// DistinctUserNames keeps, of users sharing a userName (case-insensitively), only the one
// that owns it, in the given order: a SCIM filter never returns two users for one
// userName.
func DistinctUserNames(users []*scimv1.StackUser) []*scimv1.StackUser {
	if len(users) < 2 {
		return users
	}
	owner := make(map[string]*scimv1.StackUser, len(users))
	dup := false
	for _, u := range users {
		k := strings.ToLower(u.Spec.UserName)
		if o, ok := owner[k]; ok {
			dup = true
			if OwnsUserNameBefore(o, u) {
				continue
			}
		}
		owner[k] = u
	}
	if !dup {
		return users
	}
	out := make([]*scimv1.StackUser, 0, len(owner))
	for _, u := range users {
		if owner[strings.ToLower(u.Spec.UserName)] == u {
			out = append(out, u)
		}
	}
	return out
}
