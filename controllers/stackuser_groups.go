package controllers

import (
	"context"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/groups"
	"github.com/stackscim/stack-scim-operator/internal/index"
)

// resolveGroups finds the user's groups and the role to enforce: with the tenant's
// groupRoles, the highest of spec.role and the mapped groups' roles (Registered with
// neither); without, spec.role. fieldRole reads the result from status.effectiveRole,
// so planning, the site create and the resync all see the same role.
func (r *StackUserReconciler) resolveGroups(ctx context.Context, s *scope) error {
	gs, err := groups.Of(ctx, r.Client, s.user)
	if err != nil {
		return err
	}
	role, managed, source := groups.Role(s.tenant.settings, s.user, gs)
	s.user.Status.Groups = groups.Memberships(gs)
	s.user.Status.EffectiveRole = ""
	if managed {
		s.user.Status.EffectiveRole = string(role)
	}
	s.roleSource = source
	s.groupsResolved = true
	return nil
}

// groupStatusFields adds what resolveGroups found to the status patch.
func groupStatusFields(s *scope, fields map[string]any) {
	if !s.groupsResolved {
		return
	}
	gs := s.user.Status.Groups
	if gs == nil {
		gs = []scimv1.GroupMembership{}
	}
	fields["groups"] = gs
	fields["effectiveRole"] = s.user.Status.EffectiveRole
}

// roleOrigin names where the role comes from, for messages, when the tenant maps groups
// to roles (otherwise it is always the role attribute, and messages stay as they were).
func roleOrigin(s *scope) string {
	if s.tenant == nil || !s.tenant.settings.MapsGroups() || s.roleSource == "" {
		return ""
	}
	return " (role from " + s.roleSource + ")"
}

// groupRequestActor names the SCIM group request as the actor of a role change that a
// membership change caused: the effective role moved with no spec change, and the user's
// membership changed since it was last reconciled. A group deleted or renamed leaves the
// operator as the actor.
func groupRequestActor(s *scope, actor scimv1.Actor) scimv1.Actor {
	u := s.orig
	if u.Generation != u.Status.ObservedGeneration || u.Status.EffectiveRole == s.user.Status.EffectiveRole {
		return actor
	}
	req, ok := groups.LastRequest(u)
	if !ok {
		return actor
	}
	at, err := time.Parse(time.RFC3339Nano, req.Time)
	if err != nil || (u.Status.Site != nil && u.Status.Site.SyncTime != nil && at.Before(u.Status.Site.SyncTime.Time)) {
		return actor
	}
	// The request must explain the membership now (status times have one-second
	// resolution): a join of a group the user is in, or a leave of one it is not in.
	in := slices.ContainsFunc(s.user.Status.Groups, func(m scimv1.GroupMembership) bool {
		return strings.EqualFold(m.DisplayName, req.Group)
	})
	if in != req.Joined {
		return actor
	}
	return scimv1.Actor{Kind: scimv1.ActorIdentityProvider, Name: req.Tenant, UserAgent: req.UserAgent, RequestID: req.RequestID}
}

// groupLabelsChanged passes StackUser updates that change a group membership label: the
// member's role is re-evaluated with no request for the user.
func groupLabelsChanged() predicate.Funcs {
	return predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
		UpdateFunc: func(e event.UpdateEvent) bool {
			if e.ObjectOld == nil || e.ObjectNew == nil {
				return false
			}
			return !groupLabelsEqual(e.ObjectOld.GetLabels(), e.ObjectNew.GetLabels())
		},
	}
}

func groupLabelsEqual(a, b map[string]string) bool {
	count := 0
	for k, v := range a {
		if isGroupLabel(k) {
			count++
			if w, ok := b[k]; !ok || w != v {
				return false
			}
		}
	}
	for k := range b {
		if isGroupLabel(k) {
			count--
		}
	}
	return count == 0
}

func isGroupLabel(k string) bool {
	return len(k) > len(scimv1.LabelGroupPrefix) && k[:len(scimv1.LabelGroupPrefix)] == scimv1.LabelGroupPrefix
}

// groupMeaningChanged passes StackGroup events that can change a member's role: a new
// group (its members may have been labelled before the cache saw it), a rename (groupRoles
// refer to display names), the start of a deletion, and a deletion.
func groupMeaningChanged() predicate.Funcs {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok1 := e.ObjectOld.(*scimv1.StackGroup)
			n, ok2 := e.ObjectNew.(*scimv1.StackGroup)
			if !ok1 || !ok2 {
				return false
			}
			return o.Spec.DisplayName != n.Spec.DisplayName || o.Spec.SettingsRef != n.Spec.SettingsRef ||
				o.DeletionTimestamp.IsZero() != n.DeletionTimestamp.IsZero()
		},
	}
}

// membersOfGroup maps a StackGroup to its members.
func (r *StackUserReconciler) membersOfGroup(ctx context.Context, o client.Object) []reconcile.Request {
	var users scimv1.StackUserList
	if err := r.List(ctx, &users, client.InNamespace(o.GetNamespace()),
		client.MatchingFields{index.UserGroup: index.GroupMemberKey(o.GetName(), string(o.GetUID()))}, client.UnsafeDisableDeepCopy); err != nil {
		logf.FromContext(ctx).Error(err, "listing a group's members", "group", o.GetName())
		return nil
	}
	out := make([]reconcile.Request, len(users.Items))
	for i := range users.Items {
		out[i] = reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&users.Items[i])}
	}
	return out
}
