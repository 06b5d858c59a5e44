package server

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/audit"
	"github.com/stackscim/stack-scim-operator/internal/groups"
	"github.com/stackscim/stack-scim-operator/internal/index"
	"github.com/stackscim/stack-scim-operator/internal/scim/filter"
	"github.com/stackscim/stack-scim-operator/internal/scim/resource"
	"github.com/stackscim/stack-scim-operator/internal/scim/scimerr"
)

// The Groups endpoints, as Okta Push Groups and Entra group provisioning use them. A group
// is a StackGroup; its members are StackUsers labelled with it (see internal/groups), so a
// request writes the group object only when displayName or externalId change, and one
// small patch per user whose membership changes. Every request is checked in full (body,
// member ids, displayName uniqueness) before anything is written.

// deletedGroups holds the UIDs of groups this replica deleted in the last recentTTL, so a
// read right after a DELETE answers 404 even before the cache sees the deletion. Group
// deletions are rare: the map stays small.
var deletedGroups sync.Map // types.UID -> time.Time

func recentlyDeleted(g *scimv1.StackGroup) bool {
	v, ok := deletedGroups.Load(g.UID)
	if !ok {
		return false
	}
	if time.Since(v.(time.Time)) > recentTTL {
		deletedGroups.Delete(g.UID)
		return false
	}
	return true
}

// groups routes a Groups request.
func (s *Server) groups(q *request) {
	m := q.r.Method
	switch {
	case len(q.rest) == 0 && m == http.MethodGet:
		s.listGroups(q)
	case len(q.rest) == 0 && m == http.MethodPost:
		s.groupWrite(q, s.createGroup)
	case len(q.rest) == 0:
		q.w.Header().Set("Allow", "GET, POST")
		writeError(q.w, q.r, scimerr.New(http.StatusMethodNotAllowed, "", "%s is not supported on /Groups", m))
	case len(q.rest) > 1:
		writeError(q.w, q.r, scimerr.New(http.StatusNotFound, "", "no such resource"))
	case m == http.MethodGet:
		g, err := s.findGroup(q.r.Context(), q, q.rest[0], false)
		if err == nil {
			err = s.writeGroup(q, http.StatusOK, g)
		}
		if err != nil {
			writeError(q.w, q.r, toSCIMError(err))
		}
	case m == http.MethodPut:
		s.groupWrite(q, s.replaceGroup)
	case m == http.MethodPatch:
		s.groupWrite(q, s.patchGroup)
	case m == http.MethodDelete:
		s.groupWrite(q, s.deleteGroup)
	default:
		q.w.Header().Set("Allow", "GET, PUT, PATCH, DELETE")
		writeError(q.w, q.r, scimerr.New(http.StatusMethodNotAllowed, "", "%s is not supported on /Groups/{id}", m))
	}
}

// groupWrite runs a write handler on a context detached from the client's.
func (s *Server) groupWrite(q *request, h func(context.Context, *request) error) {
	ctx, cancel := writeContext(q.r)
	defer cancel()
	if err := h(ctx, q); err != nil {
		writeError(q.w, q.r, toSCIMError(err))
	}
}

func groupNotFound(id string) error {
	return scimerr.New(http.StatusNotFound, "", "no group with id %q in this tenant", truncate(id, 256))
}

func groupLocation(q *request, id string) string {
	return q.baseURL + "/Groups/" + url.PathEscape(id)
}

// findGroup reads a live group of the tenant by id: from the cache, else (or when live is
// set: a retry after a conflict) from the API server.
func (s *Server) findGroup(ctx context.Context, q *request, id string, live bool) (*scimv1.StackGroup, error) {
	if len(validation.IsDNS1123Subdomain(id)) > 0 {
		return nil, groupNotFound(id)
	}
	key := types.NamespacedName{Namespace: q.tenant.Namespace, Name: id}
	g := &scimv1.StackGroup{}
	var err error
	if !live {
		err = s.opts.Client.Get(ctx, key, g)
	}
	if live || apierrors.IsNotFound(err) {
		err = s.opts.APIReader.Get(ctx, key, g)
	}
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, groupNotFound(id)
		}
		return nil, s.apiError(err, "reading group")
	}
	if !groups.Live(g, q.tenant.Name) || recentlyDeleted(g) {
		return nil, groupNotFound(id)
	}
	return g, nil
}

// groupByDisplayName returns a live group of the tenant with the displayName (compared
// case-insensitively) other than except.
func (s *Server) groupByDisplayName(ctx context.Context, q *request, name, except string) (*scimv1.StackGroup, error) {
	var list scimv1.StackGroupList
	if err := s.opts.Client.List(ctx, &list, client.InNamespace(q.tenant.Namespace),
		client.MatchingFields{index.GroupDisplayName: index.DisplayNameKey(q.tenant.Name, name)}); err != nil {
		return nil, s.apiError(err, "listing groups by displayName")
	}
	for i := range list.Items {
		if g := &list.Items[i]; g.Name != except && groups.Live(g, q.tenant.Name) && !recentlyDeleted(g) {
			return g, nil
		}
	}
	return nil, nil
}

func duplicateGroup(name, id string) error {
	return scimerr.New(http.StatusConflict, scimerr.Uniqueness,
		"a group with displayName %q already exists (id %s); displayName is unique regardless of case", truncate(name, 256), id)
}

// groupAttrs reads the `attributes` and `excludedAttributes` parameters with the Group
// schema URN taken off, and says whether the response needs the member list at all:
// Entra reads groups with excludedAttributes=members, and a 100,000-member list is
// megabytes.
func groupAttrs(q *request) (attrs, excluded []string, members bool) {
	strip := func(l []string) []string {
		for i, a := range l {
			if len(a) > len(resource.SchemaGroup) && strings.EqualFold(a[:len(resource.SchemaGroup)+1], resource.SchemaGroup+":") {
				l[i] = a[len(resource.SchemaGroup)+1:]
			}
		}
		return l
	}
	qv := q.r.URL.Query()
	attrs, excluded = strip(splitList(qv.Get("attributes"))), strip(splitList(qv.Get("excludedAttributes")))
	isMembers := func(a string) bool {
		return strings.EqualFold(a, "members") || strings.HasPrefix(strings.ToLower(a), "members.")
	}
	if slices.ContainsFunc(excluded, func(a string) bool { return strings.EqualFold(a, "members") }) {
		return attrs, excluded, false
	}
	return attrs, excluded, len(attrs) == 0 || slices.ContainsFunc(attrs, isMembers)
}

// groupDoc renders a group; members nil leaves the attribute out.
func groupDoc(q *request, g *scimv1.StackGroup, members []*scimv1.StackUser) map[string]any {
	doc := map[string]any{
		"schemas":     []any{resource.SchemaGroup},
		"id":          g.Name,
		"displayName": g.Spec.DisplayName,
	}
	if g.Spec.ExternalID != "" {
		doc["externalId"] = g.Spec.ExternalID
	}
	if members != nil {
		l := make([]any, len(members))
		for i, u := range members {
			display := u.Spec.DisplayName
			if display == "" {
				display = u.Spec.UserName
			}
			l[i] = map[string]any{"value": u.Name, "display": display, "type": "User", "$ref": q.baseURL + "/Users/" + url.PathEscape(u.Name)}
		}
		doc["members"] = l
	}
	created := g.CreationTimestamp.UTC().Format(time.RFC3339)
	lastModified := created
	if lm := g.Annotations[audit.AnnotationLastModified]; lm != "" {
		lastModified = lm
	}
	doc["meta"] = map[string]any{
		"resourceType": "Group",
		"created":      created,
		"lastModified": lastModified,
		"location":     groupLocation(q, g.Name),
		"version":      groupVersion(g),
	}
	return doc
}

// groupVersion is the group's ETag: its generation (membership lives on the users).
func groupVersion(g *scimv1.StackGroup) string {
	return `W/"` + strconv.FormatInt(g.Generation, 10) + `"`
}

// renderGroup builds one group's response document, reading its members only when the
// response shows them.
func (s *Server) renderGroup(ctx context.Context, q *request, g *scimv1.StackGroup) (map[string]any, error) {
	attrs, excluded, withMembers := groupAttrs(q)
	var members []*scimv1.StackUser
	if withMembers {
		var err error
		if members, err = groups.Members(ctx, s.opts.Client, g); err != nil {
			return nil, s.apiError(err, "listing group members")
		}
	}
	return resource.Project(groupDoc(q, g, members), attrs, excluded), nil
}

func (s *Server) writeGroup(q *request, status int, g *scimv1.StackGroup) error {
	return s.writeGroupWith(q, status, g, nil)
}

// writeGroupWith answers with the group; members, when not nil, are its members as the
// request just wrote them (the cache may not show them yet).
func (s *Server) writeGroupWith(q *request, status int, g *scimv1.StackGroup, members []*scimv1.StackUser) error {
	var doc map[string]any
	if members != nil {
		attrs, excluded, withMembers := groupAttrs(q)
		if !withMembers {
			members = nil
		}
		slices.SortFunc(members, func(a, b *scimv1.StackUser) int { return strings.Compare(a.Name, b.Name) })
		doc = resource.Project(groupDoc(q, g, members), attrs, excluded)
	} else {
		var err error
		if doc, err = s.renderGroup(q.r.Context(), q, g); err != nil {
			return err
		}
	}
	q.w.Header().Set("ETag", groupVersion(g))
	if status == http.StatusCreated {
		q.w.Header().Set("Location", groupLocation(q, g.Name))
	}
	writeJSON(q.w, q.r, status, doc)
	return nil
}

// listGroups answers GET /Groups: the tenant's groups in creation order (stable across
// pages), filtered on displayName, externalId, id or members.value.
func (s *Server) listGroups(q *request) {
	p, err := s.parseListParams(q)
	if err == nil {
		var hits []*scimv1.StackGroup
		if hits, err = s.matchGroups(q.r.Context(), q, p.filter); err == nil {
			from := p.startIndex - 1
			docs := []any{}
			if from < len(hits) && p.count > 0 {
				for _, g := range hits[from:min(from+p.count, len(hits))] {
					var doc map[string]any
					if doc, err = s.renderGroup(q.r.Context(), q, g); err != nil {
						break
					}
					docs = append(docs, doc)
				}
			}
			if err == nil {
				writeJSON(q.w, q.r, http.StatusOK, listResponse(len(hits), p.startIndex, docs))
				return
			}
		}
	}
	writeError(q.w, q.r, toSCIMError(err))
}

// matchGroups returns the tenant's live groups that match f, in list order. A filter on
// members is evaluated against each group's member ids, read only for such filters.
func (s *Server) matchGroups(ctx context.Context, q *request, f filter.Expression) ([]*scimv1.StackGroup, error) {
	var list scimv1.StackGroupList
	if err := s.opts.Client.List(ctx, &list, client.InNamespace(q.tenant.Namespace),
		client.MatchingFields{index.GroupTenant: q.tenant.Name}); err != nil {
		return nil, s.apiError(err, "listing groups")
	}
	all := make([]*scimv1.StackGroup, 0, len(list.Items))
	for i := range list.Items {
		if g := &list.Items[i]; groups.Live(g, q.tenant.Name) && !recentlyDeleted(g) {
			all = append(all, g)
		}
	}
	slices.SortFunc(all, func(a, b *scimv1.StackGroup) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	if f == nil {
		return all, nil
	}
	needMembers := filterNames(f, "members")
	out := all[:0:0]
	for _, g := range all {
		var members []*scimv1.StackUser
		if needMembers {
			var err error
			if members, err = groups.Members(ctx, s.opts.Client, g); err != nil {
				return nil, s.apiError(err, "listing group members")
			}
		}
		if filter.Match(f, groupDoc(q, g, members)) {
			out = append(out, g)
		}
	}
	return out, nil
}

// filterNames reports whether the filter's text mentions the attribute.
func filterNames(f filter.Expression, attr string) bool {
	return strings.Contains(strings.ToLower(fmt.Sprint(f)), strings.ToLower(attr))
}

// groupInput is the writable part of a Group resource in a POST or PUT body.
type groupInput struct {
	displayName, externalID string
	members                 []string
}

// parseGroup reads a POST or PUT body. Read-only attributes (id, meta, schemas) are
// ignored, as Okta sends back what it read.
func parseGroup(body map[string]any) (groupInput, error) {
	var in groupInput
	for k, v := range body {
		switch strings.ToLower(strings.TrimPrefix(strings.ToLower(k), strings.ToLower(resource.SchemaGroup)+":")) {
		case "displayname":
			name, err := displayNameValue(v)
			if err != nil {
				return in, err
			}
			in.displayName = name
		case "externalid":
			ext, err := externalIDValue(v)
			if err != nil {
				return in, err
			}
			in.externalID = ext
		case "members":
			if v == nil {
				continue
			}
			ids, err := memberIDs(v)
			if err != nil {
				return in, err
			}
			in.members = ids
		case "id", "meta", "schemas":
		default:
			return in, scimerr.BadRequest(scimerr.InvalidValue, "a group has no attribute %q; groups have displayName, externalId and members", truncate(k, 100))
		}
	}
	if in.displayName == "" {
		return in, scimerr.BadRequest(scimerr.InvalidValue, "displayName is required")
	}
	return in, nil
}

func displayNameValue(v any) (string, error) {
	name, ok := v.(string)
	name = strings.TrimSpace(name)
	if !ok || name == "" {
		return "", scimerr.BadRequest(scimerr.InvalidValue, "displayName must be a non-empty string")
	}
	if len(name) > 256 {
		return "", scimerr.BadRequest(scimerr.InvalidValue, "displayName is longer than 256 characters")
	}
	return name, nil
}

func externalIDValue(v any) (string, error) {
	if v == nil {
		return "", nil
	}
	ext, ok := v.(string)
	if !ok || len(ext) > 256 {
		return "", scimerr.BadRequest(scimerr.InvalidValue, "externalId must be a string of at most 256 characters")
	}
	return ext, nil
}

// memberIDs reads a members value: a list of {"value": id} objects (Entra adds
// "$ref": null, Okta "display"), or one such object.
func memberIDs(v any) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		if m, isMap := v.(map[string]any); isMap {
			list = []any{m}
		} else {
			return nil, scimerr.BadRequest(scimerr.InvalidValue, `members must be a list of {"value": "<user id>"} objects`)
		}
	}
	out := make([]string, 0, len(list))
	for i, el := range list {
		m, ok := el.(map[string]any)
		if !ok {
			return nil, scimerr.BadRequest(scimerr.InvalidValue, `member %d is not an object; expected {"value": "<user id>"}`, i+1)
		}
		if t, _ := filter.GetCI(m, "type"); t != nil {
			if ts, _ := t.(string); ts != "" && !strings.EqualFold(ts, "User") {
				return nil, scimerr.BadRequest(scimerr.InvalidValue, "member %d has type %q; only users can be group members (nested groups are not supported)", i+1, truncate(ts, 64))
			}
		}
		raw, _ := filter.GetCI(m, "value")
		id, ok := raw.(string)
		if !ok || strings.TrimSpace(id) == "" {
			return nil, scimerr.BadRequest(scimerr.InvalidValue, "member %d has no \"value\" (the user's id)", i+1)
		}
		out = append(out, strings.TrimSpace(id))
	}
	return out, nil
}

func (s *Server) createGroup(ctx context.Context, q *request) error {
	body, err := readBody(q.w, q.r, s.opts.MaxBodyBytes)
	if err != nil {
		return err
	}
	in, err := parseGroup(body)
	if err != nil {
		return err
	}
	if other, err := s.groupByDisplayName(ctx, q, in.displayName, ""); err != nil {
		return err
	} else if other != nil {
		return duplicateGroup(other.Spec.DisplayName, other.Name)
	}
	plan := newMemberPlan()
	plan.add(in.members...)
	joins, _, after, err := s.resolvePlan(ctx, q, nil, plan)
	if err != nil {
		return err
	}
	g := &scimv1.StackGroup{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:   q.tenant.Namespace,
			Name:        groups.NameFor(q.tenant.Name, in.displayName),
			Labels:      map[string]string{scimv1.LabelSettings: q.tenant.Name},
			Annotations: map[string]string{audit.AnnotationLastModified: time.Now().UTC().Format(time.RFC3339)},
			Finalizers:  []string{groups.Finalizer},
		},
		Spec: scimv1.StackGroupSpec{
			SettingsRef: scimv1.SettingsReference{Name: q.tenant.Name},
			DisplayName: in.displayName,
			ExternalID:  in.externalID,
		},
	}
	err = s.opts.Client.Create(ctx, g, client.FieldOwner(audit.SCIMFieldManager))
	if apierrors.IsAlreadyExists(err) {
		var existing scimv1.StackGroup
		gerr := s.opts.APIReader.Get(ctx, client.ObjectKeyFromObject(g), &existing)
		if gerr == nil && groups.Live(&existing, q.tenant.Name) && strings.EqualFold(existing.Spec.DisplayName, in.displayName) {
			return duplicateGroup(existing.Spec.DisplayName, existing.Name)
		}
		if gerr != nil && !apierrors.IsNotFound(gerr) {
			return s.apiError(gerr, "reading the existing group")
		}
		// The hashed name is held by a group renamed since, or by one being deleted (its
		// members' labels carry its UID, so they never count for this one).
		g.Name, g.GenerateName, g.ResourceVersion = "", "g-", ""
		err = s.opts.Client.Create(ctx, g, client.FieldOwner(audit.SCIMFieldManager))
	}
	if err != nil {
		return s.apiError(err, "creating group")
	}
	if err := s.writeMemberships(ctx, q, g, joins, nil); err != nil {
		return err
	}
	return s.writeGroupWith(q, http.StatusCreated, g, after)
}

func (s *Server) replaceGroup(ctx context.Context, q *request) error {
	body, err := readBody(q.w, q.r, s.opts.MaxBodyBytes)
	if err != nil {
		return err
	}
	in, err := parseGroup(body)
	if err != nil {
		return err
	}
	// PUT replaces every attribute: members it leaves out are removed (RFC 7644 3.5.1).
	plan := newMemberPlan()
	plan.clear()
	plan.add(in.members...)
	g, after, err := s.changeGroup(ctx, q, func(spec *scimv1.StackGroupSpec) {
		spec.DisplayName, spec.ExternalID = in.displayName, in.externalID
	}, plan)
	if err != nil {
		return err
	}
	return s.writeGroupWith(q, http.StatusOK, g, after)
}

func (s *Server) deleteGroup(ctx context.Context, q *request) error {
	g, err := s.findGroup(ctx, q, q.rest[0], false)
	if err != nil {
		return err
	}
	if err := checkGroupIfMatch(q, g); err != nil {
		return err
	}
	uid := g.UID
	// The group's finalizer takes the members' labels off (internal/groups); from now on
	// the group counts for nobody, and its members' roles are re-evaluated.
	if err := s.opts.Client.Delete(ctx, g, client.Preconditions{UID: &uid}); err != nil {
		if apierrors.IsNotFound(err) {
			return groupNotFound(g.Name)
		}
		return s.apiError(err, "deleting group")
	}
	deletedGroups.Store(uid, time.Now())
	s.log.Info("SCIM group deleted", "requestId", q.id, "tenant", q.tenantName(), "group", g.Name, "displayName", g.Spec.DisplayName)
	q.w.WriteHeader(http.StatusNoContent)
	return nil
}

// checkGroupIfMatch enforces an If-Match header against the group's version.
func checkGroupIfMatch(q *request, g *scimv1.StackGroup) error {
	h := strings.TrimSpace(q.r.Header.Get("If-Match"))
	if h == "" || h == "*" {
		return nil
	}
	for _, tag := range strings.Split(h, ",") {
		if strings.Trim(strings.TrimPrefix(strings.TrimSpace(tag), "W/"), `"`) == strconv.FormatInt(g.Generation, 10) {
			return nil
		}
	}
	return scimerr.New(http.StatusPreconditionFailed, "", "the group has changed since version %s was read (now %s); read it again", truncate(h, 64), groupVersion(g))
}

// changeGroup is the read-check-write of PUT and PATCH: it applies mutate to the group's
// spec and plan to its members, checks everything (displayName uniqueness, member ids),
// then writes the group (only if its spec changed) and the members whose membership
// changes. It returns the group and, when the plan decided them all, its members.
func (s *Server) changeGroup(ctx context.Context, q *request, mutate func(*scimv1.StackGroupSpec), plan *memberPlan) (*scimv1.StackGroup, []*scimv1.StackUser, error) {
	for attempt := 0; ; attempt++ {
		g, err := s.findGroup(ctx, q, q.rest[0], attempt > 0)
		if err != nil {
			return nil, nil, err
		}
		if err := checkGroupIfMatch(q, g); err != nil {
			return nil, nil, err
		}
		spec := g.Spec.DeepCopy()
		mutate(spec)
		if !strings.EqualFold(spec.DisplayName, g.Spec.DisplayName) {
			if other, err := s.groupByDisplayName(ctx, q, spec.DisplayName, g.Name); err != nil {
				return nil, nil, err
			} else if other != nil {
				return nil, nil, duplicateGroup(other.Spec.DisplayName, other.Name)
			}
		}
		joins, leaves, after, err := s.resolvePlan(ctx, q, g, plan)
		if err != nil {
			return nil, nil, err
		}
		if *spec != g.Spec {
			upd := g.DeepCopy()
			upd.Spec = *spec
			if upd.Annotations == nil {
				upd.Annotations = map[string]string{}
			}
			upd.Annotations[audit.AnnotationLastModified] = time.Now().UTC().Format(time.RFC3339)
			upd.ManagedFields = nil
			err := s.opts.Client.Update(ctx, upd, client.FieldOwner(audit.SCIMFieldManager))
			if apierrors.IsConflict(err) && attempt < maxUpdateAttempts {
				if werr := sleepCtx(ctx, updateBackoff(attempt)); werr != nil {
					return nil, nil, s.apiError(err, "updating group")
				}
				continue
			}
			if err != nil {
				return nil, nil, s.apiError(err, "updating group")
			}
			s.log.Info("SCIM group changed", "requestId", q.id, "tenant", q.tenantName(), "group", g.Name,
				"displayName", fmt.Sprintf("%q -> %q", g.Spec.DisplayName, spec.DisplayName))
			g = upd
		}
		return g, after, s.writeMemberships(ctx, q, g, joins, leaves)
	}
}

// withGroups adds the read-only `groups` attribute to a user document: the live groups
// of the tenant the user is a member of. Users in no group show none, as before groups
// existed, so Okta's GET-then-PUT round trip is unchanged for them.
func (s *Server) withGroups(q *request, u *scimv1.StackUser, doc map[string]any) map[string]any {
	if !hasGroupLabel(u) {
		return doc
	}
	gs, err := groups.Of(q.r.Context(), s.opts.Client, u)
	if err != nil || len(gs) == 0 {
		return doc
	}
	l := make([]any, len(gs))
	for i, g := range gs {
		l[i] = map[string]any{"value": g.Name, "display": g.Spec.DisplayName, "type": "direct", "$ref": groupLocation(q, g.Name)}
	}
	doc["groups"] = l
	return doc
}

func hasGroupLabel(u *scimv1.StackUser) bool {
	for k := range u.Labels {
		if strings.HasPrefix(k, scimv1.LabelGroupPrefix) {
			return true
		}
	}
	return false
}
