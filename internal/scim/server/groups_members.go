package server

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/audit"
	"github.com/stackscim/stack-scim-operator/internal/groups"
	"github.com/stackscim/stack-scim-operator/internal/scim/filter"
	"github.com/stackscim/stack-scim-operator/internal/scim/patch"
	"github.com/stackscim/stack-scim-operator/internal/scim/resource"
	"github.com/stackscim/stack-scim-operator/internal/scim/scimerr"
)

// memberWriters bounds the membership patches one request sends at once: a 10,000-member
// push must finish well inside the IdP's 60 s, without starving other requests.
const memberWriters = 16

// memberStep is one membership operation of a request, in request order.
type memberStep struct {
	kind  stepKind
	ids   []string
	where filter.Expression
}

type stepKind int

const (
	stepAdd stepKind = iota
	stepRemove
	stepClear
	stepRemoveWhere
)

// memberPlan is what a request does to a group's members, evaluated against the group's
// current members only when it writes (resolvePlan), so a retried write re-reads them.
type memberPlan struct{ steps []memberStep }

func newMemberPlan() *memberPlan { return &memberPlan{} }

func (p *memberPlan) add(ids ...string) {
	if len(ids) > 0 {
		p.steps = append(p.steps, memberStep{kind: stepAdd, ids: ids})
	}
}

func (p *memberPlan) remove(ids ...string) {
	if len(ids) > 0 {
		p.steps = append(p.steps, memberStep{kind: stepRemove, ids: ids})
	}
}

func (p *memberPlan) clear() { p.steps = append(p.steps, memberStep{kind: stepClear}) }

func (p *memberPlan) removeWhere(f filter.Expression) {
	p.steps = append(p.steps, memberStep{kind: stepRemoveWhere, where: f})
}

// resolvePlan runs the plan against the group's members (g nil: a group being created)
// and returns the users to add and to remove, and every member after the request when the
// plan decides all of them (a create or a full replace; nil otherwise). Only users whose membership changes are
// returned, so a full replace writes just the difference. Unknown user ids to add fail
// the whole request with nothing written; unknown ids to remove are already not members.
func (s *Server) resolvePlan(ctx context.Context, q *request, g *scimv1.StackGroup, p *memberPlan) (joins, leaves, after []*scimv1.StackUser, err error) {
	state := map[string]bool{} // id -> member after the request, for ids the plan names
	whole := false             // state lists every member (a clear or filter ran)
	current := func() (map[string]*scimv1.StackUser, error) {
		out := map[string]*scimv1.StackUser{}
		if g == nil {
			return out, nil
		}
		members, err := groups.Members(ctx, s.opts.Client, g)
		if err != nil {
			return nil, s.apiError(err, "listing group members")
		}
		for _, u := range members {
			out[u.Name] = u
		}
		return out, nil
	}
	var cur map[string]*scimv1.StackUser
	materialize := func() error {
		if whole {
			return nil
		}
		if cur == nil {
			if cur, err = current(); err != nil {
				return err
			}
		}
		for id := range cur {
			if _, named := state[id]; !named {
				state[id] = true
			}
		}
		whole = true
		return nil
	}
	for _, st := range p.steps {
		switch st.kind {
		case stepAdd:
			for _, id := range st.ids {
				state[id] = true
			}
		case stepRemove:
			for _, id := range st.ids {
				state[id] = false
			}
		case stepClear:
			if err := materialize(); err != nil {
				return nil, nil, nil, err
			}
			for id := range state {
				state[id] = false
			}
		case stepRemoveWhere:
			if err := materialize(); err != nil {
				return nil, nil, nil, err
			}
			for id, in := range state {
				if in && filter.Match(st.where, map[string]any{"value": id, "type": "User"}) {
					state[id] = false
				}
			}
		}
	}
	var unknown []string
	for _, id := range slices.Sorted(maps.Keys(state)) {
		want := state[id]
		u := cur[id]
		if u == nil {
			if u, err = s.findUser(ctx, q, id, false); err != nil {
				if se := scimerr.As(err); se != nil && se.Status == http.StatusNotFound {
					if want {
						unknown = append(unknown, id)
					}
					continue
				}
				return nil, nil, nil, err
			}
		}
		is := g != nil && groups.IsMember(u, g)
		if want {
			after = append(after, u)
		}
		switch {
		case want && !is:
			joins = append(joins, u)
		case !want && is:
			leaves = append(leaves, u)
		}
	}
	if len(unknown) > 0 {
		if err := s.unmanagedMembers(ctx, q, unknown); err != nil {
			return nil, nil, nil, err
		}
		shown := unknown[:min(len(unknown), 10)]
		more := ""
		if len(unknown) > len(shown) {
			more = fmt.Sprintf(" and %d more", len(unknown)-len(shown))
		}
		return nil, nil, nil, scimerr.BadRequest(scimerr.InvalidValue,
			"no user with id %s%s in this tenant: members must be ids of users provisioned to this tenant; nothing was changed",
			quoteList(shown), more)
	}
	if !whole && g != nil {
		after = nil
	}
	if after == nil && (whole || g == nil) {
		after = []*scimv1.StackUser{}
	}
	return joins, leaves, after, nil
}

func quoteList(ids []string) string {
	q := make([]string, len(ids))
	for i, id := range ids {
		q[i] = fmt.Sprintf("%q", truncate(id, 64))
	}
	return strings.Join(q, ", ")
}

// writeMemberships writes each changed membership as one patch on the user, a bounded
// number at a time.
func (s *Server) writeMemberships(ctx context.Context, q *request, g *scimv1.StackGroup, joins, leaves []*scimv1.StackUser) error {
	if len(joins)+len(leaves) == 0 {
		return nil
	}
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(memberWriters)
	for _, u := range joins {
		eg.Go(func() error { return s.setMembership(ctx, q, g, u, true) })
	}
	for _, u := range leaves {
		eg.Go(func() error { return s.setMembership(ctx, q, g, u, false) })
	}
	return eg.Wait()
}

// setMembership adds the user to the group or removes it with one merge patch of its
// label, carrying the request's audit entry and the group request annotation the role
// change names. The patch is locked to the resourceVersion read, so a concurrent write's
// pending audit entries are never overwritten; a conflict re-reads and retries.
func (s *Server) setMembership(ctx context.Context, q *request, g *scimv1.StackGroup, u *scimv1.StackUser, join bool) error {
	key := client.ObjectKeyFromObject(u)
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			u = &scimv1.StackUser{}
			if err := s.opts.APIReader.Get(ctx, key, u); err != nil {
				if apierrors.IsNotFound(err) {
					return nil
				}
				return s.apiError(err, "reading group member")
			}
		}
		if groups.IsMember(u, g) == join {
			return nil
		}
		e := s.entry(q, audit.ActionGroupLeave, []scimv1.FieldChange{{Field: "groups", Old: g.Spec.DisplayName}})
		e.Message = fmt.Sprintf("removed from group %q (id %s)", g.Spec.DisplayName, g.Name)
		var label any // null removes the label
		if join {
			e = s.entry(q, audit.ActionGroupJoin, []scimv1.FieldChange{{Field: "groups", New: g.Spec.DisplayName}})
			e.Message = fmt.Sprintf("added to group %q (id %s)", g.Spec.DisplayName, g.Name)
			label = string(g.UID)
		}
		// AddPending only writes the annotations; the status is read for what is recorded.
		scratch := &scimv1.StackUser{Status: u.Status}
		scratch.Annotations = maps.Clone(u.Annotations)
		audit.AddPending(scratch, q.settings.EffectiveHistoryLimit(), e)
		req := groups.Request{
			RequestInfo: audit.RequestInfo{RequestID: q.id, UserAgent: e.Actor.UserAgent, Tenant: e.Actor.Name,
				Time: e.Time.UTC().Format("2006-01-02T15:04:05.999999999Z07:00")},
			Group:  g.Spec.DisplayName,
			Joined: join,
		}
		body, _ := json.Marshal(map[string]any{"metadata": map[string]any{
			"resourceVersion": u.ResourceVersion,
			"labels":          map[string]any{g.MemberLabel(): label},
			"annotations": map[string]string{
				audit.AnnotationPendingAudit: scratch.Annotations[audit.AnnotationPendingAudit],
				groups.AnnotationLastRequest: groups.EncodeRequest(req),
			},
		}})
		target := &scimv1.StackUser{}
		target.Namespace, target.Name = u.Namespace, u.Name
		err := s.opts.Client.Patch(ctx, target, client.RawPatch(types.MergePatchType, body), client.FieldOwner(audit.SCIMFieldManager))
		if apierrors.IsConflict(err) && attempt < maxUpdateAttempts {
			if werr := sleepCtx(ctx, updateBackoff(attempt)); werr != nil {
				return s.apiError(err, "updating group member")
			}
			continue
		}
		if apierrors.IsNotFound(err) {
			return nil // the user was deleted meanwhile: it is in no group
		}
		if err != nil {
			return s.apiError(err, "updating group member")
		}
		s.recorder.LogEntries(target, e)
		return nil
	}
}

// patchGroup answers PATCH /Groups/{id} with 204, as Entra expects and Okta accepts.
func (s *Server) patchGroup(ctx context.Context, q *request) error {
	body, err := readBody(q.w, q.r, s.opts.MaxBodyBytes)
	if err != nil {
		return err
	}
	ops, err := patch.Decode(body)
	if err != nil {
		return err
	}
	plan := newMemberPlan()
	var edits []func(*scimv1.StackGroupSpec)
	for i, op := range ops {
		if err := compileGroupOp(op, plan, &edits); err != nil {
			if se := scimerr.As(err); se != nil {
				se.Detail = fmt.Sprintf("operation %d (%s%s): %s", i+1, strings.ToLower(op.Op), pathText(op.Path), se.Detail)
			}
			return err
		}
	}
	if _, _, err := s.changeGroup(ctx, q, func(spec *scimv1.StackGroupSpec) {
		for _, edit := range edits {
			edit(spec)
		}
	}, plan); err != nil {
		return err
	}
	q.w.WriteHeader(http.StatusNoContent)
	return nil
}

func pathText(p string) string {
	if p == "" {
		return ""
	}
	return " " + truncate(p, 100)
}

// groupAttrName takes the Group schema URN off an attribute name and lower-cases it.
func groupAttrName(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > len(resource.SchemaGroup) && strings.EqualFold(s[:len(resource.SchemaGroup)+1], resource.SchemaGroup+":") {
		s = s[len(resource.SchemaGroup)+1:]
	}
	return strings.ToLower(s)
}

// compileGroupOp turns one PATCH operation into member steps and spec edits. It checks the
// operation completely, so a bad one fails the request before anything is written.
func compileGroupOp(op patch.Operation, plan *memberPlan, edits *[]func(*scimv1.StackGroupSpec)) error {
	kind := strings.ToLower(op.Op)
	if op.Path == "" {
		if kind == "remove" {
			return scimerr.BadRequest(scimerr.NoTarget, "remove needs a path")
		}
		m, ok := op.Value.(map[string]any)
		if !ok {
			return scimerr.BadRequest(scimerr.InvalidValue, "without a path the value must be an object of attributes")
		}
		// Okta sends {"id": ..., "displayName": ...} with every membership push.
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if err := compileGroupAttr(kind, groupAttrName(k), "", m[k], true, plan, edits); err != nil {
				return err
			}
		}
		return nil
	}
	attr, bracket := op.Path, ""
	if i := strings.IndexByte(op.Path, '['); i >= 0 {
		j := strings.LastIndexByte(op.Path, ']')
		if j < i {
			return scimerr.BadRequest(scimerr.InvalidPath, "unbalanced brackets in path %q", truncate(op.Path, 100))
		}
		if rest := op.Path[j+1:]; rest != "" {
			return scimerr.BadRequest(scimerr.InvalidPath, "member sub-attributes cannot be changed; remove or add the member instead")
		}
		attr, bracket = op.Path[:i], op.Path[i+1:j]
	}
	return compileGroupAttr(kind, groupAttrName(attr), bracket, op.Value, op.HasValue, plan, edits)
}

func compileGroupAttr(kind, attr, bracket string, value any, hasValue bool, plan *memberPlan, edits *[]func(*scimv1.StackGroupSpec)) error {
	if bracket != "" && attr != "members" {
		return scimerr.BadRequest(scimerr.InvalidPath, "only members can be selected with a filter")
	}
	switch attr {
	case "members":
		return compileMembers(kind, bracket, value, hasValue, plan)
	case "displayname":
		if kind == "remove" {
			return scimerr.BadRequest(scimerr.Mutability, "displayName is required and cannot be removed")
		}
		name, err := displayNameValue(value)
		if err != nil {
			return err
		}
		*edits = append(*edits, func(s *scimv1.StackGroupSpec) { s.DisplayName = name })
	case "externalid":
		ext := ""
		if kind != "remove" {
			var err error
			if ext, err = externalIDValue(value); err != nil {
				return err
			}
		}
		*edits = append(*edits, func(s *scimv1.StackGroupSpec) { s.ExternalID = ext })
	case "id", "meta", "schemas":
		// Read-only; Okta repeats the id in its path-less replace.
	default:
		return scimerr.BadRequest(scimerr.InvalidPath, "a group has no attribute %q; groups have displayName, externalId and members", truncate(attr, 100))
	}
	return nil
}

func compileMembers(kind, bracket string, value any, hasValue bool, plan *memberPlan) error {
	if bracket != "" {
		if kind != "remove" {
			return scimerr.BadRequest(scimerr.InvalidPath, "only remove can select members with a filter; add members with a value list")
		}
		f, err := filter.Parse(bracket)
		if err != nil {
			return scimerr.BadRequest(scimerr.InvalidPath, "invalid member filter %q", truncate(bracket, 100))
		}
		// The usual form, members[value eq "id"], names one member: no need to read the rest.
		if eq, ok := filter.Equalities(f); ok && len(eq) == 1 {
			if id, isString := eq["value"].(string); isString {
				plan.remove(id)
				return nil
			}
		}
		plan.removeWhere(f)
		return nil
	}
	if kind == "remove" {
		if hasValue && value != nil {
			// Entra's default: remove only the listed members (not all of them).
			ids, err := memberIDs(value)
			if err != nil {
				return err
			}
			plan.remove(ids...)
			return nil
		}
		plan.clear()
		return nil
	}
	if !hasValue {
		return scimerr.BadRequest(scimerr.InvalidValue, "%s of members needs a value", kind)
	}
	var ids []string
	if value != nil {
		var err error
		if ids, err = memberIDs(value); err != nil {
			return err
		}
	}
	if kind == "replace" {
		plan.clear()
	}
	plan.add(ids...)
	return nil
}
