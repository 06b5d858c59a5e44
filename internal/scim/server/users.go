package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/audit"
	"github.com/stackscim/stack-scim-operator/internal/index"
	"github.com/stackscim/stack-scim-operator/internal/scim/filter"
	"github.com/stackscim/stack-scim-operator/internal/scim/patch"
	"github.com/stackscim/stack-scim-operator/internal/scim/resource"
	"github.com/stackscim/stack-scim-operator/internal/scim/scimerr"
	"github.com/stackscim/stack-scim-operator/internal/scim/userview"
	"github.com/stackscim/stack-scim-operator/internal/tenant"
)

// NameFor is the object name a SCIM POST gives a user: a hash of tenant and lower-cased
// userName, so that concurrent duplicate POSTs, on any replica, race for the same name
// and the API server lets exactly one win.
func NameFor(tenant, userName string) string {
	sum := sha256.Sum256([]byte(tenant + "\x00" + strings.ToLower(userName)))
	return "u-" + hex.EncodeToString(sum[:])[:20]
}

// writeTimeout bounds the work of one write request. Writes run on a context detached
// from the client's, so a client hanging up cannot leave a write half recorded.
const writeTimeout = 45 * time.Second

func writeContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(r.Context()), writeTimeout)
}

func (s *Server) location(q *request, id string) string {
	return q.baseURL + "/Users/" + url.PathEscape(id)
}

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (s *Server) project(q *request, doc map[string]any) map[string]any {
	qv := q.r.URL.Query()
	return resource.Project(doc, splitList(qv.Get("attributes")), splitList(qv.Get("excludedAttributes")))
}

func (s *Server) writeUser(q *request, status int, u *scimv1.StackUser) {
	loc := s.location(q, u.Name)
	q.w.Header().Set("ETag", resource.Version(u))
	if status == http.StatusCreated {
		q.w.Header().Set("Location", loc)
	}
	writeJSON(q.w, q.r, status, s.project(q, s.withGroups(q, u, resource.ToSCIM(u, loc))))
}

func notFound(id string) error {
	return scimerr.New(http.StatusNotFound, "", "no user with id %q in this tenant", truncate(id, 256))
}

// isNotFound reports whether err is a SCIM 404.
func isNotFound(err error) bool {
	se := scimerr.As(err)
	return se != nil && se.Status == http.StatusNotFound
}

// findUser reads a tenant's user by id: from the cache, overlaid with this replica's own
// recent writes, else live from the API server so a just-created user is found even on
// another replica. Users of other tenants and users being deleted are 404.
func (s *Server) findUser(ctx context.Context, q *request, id string, live bool) (*scimv1.StackUser, error) {
	if len(validation.IsDNS1123Subdomain(id)) > 0 {
		return nil, notFound(id)
	}
	key := types.NamespacedName{Namespace: q.tenant.Namespace, Name: id}
	u := &scimv1.StackUser{}
	var err error
	if !live {
		err = s.opts.Client.Get(ctx, key, u)
		if err == nil {
			var gone bool
			if u, gone = s.recent.overlay(key, u); gone {
				return nil, notFound(id)
			}
		}
	}
	if live || apierrors.IsNotFound(err) {
		u = &scimv1.StackUser{}
		err = s.opts.APIReader.Get(ctx, key, u)
	}
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, notFound(id)
		}
		return nil, s.apiError(err, "reading user")
	}
	if u.Spec.SettingsRef.Name != q.tenant.Name || u.DeletionTimestamp != nil {
		return nil, notFound(id)
	}
	return u, nil
}

// apiError maps an API server error to a SCIM error a human can act on.
func (s *Server) apiError(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case scimerr.As(err) != nil:
		return err
	case apierrors.IsInvalid(err):
		return scimerr.BadRequest(scimerr.InvalidValue, "%s", invalidDetail(err))
	case apierrors.IsAlreadyExists(err):
		return scimerr.New(http.StatusConflict, scimerr.Uniqueness, "the user already exists")
	case apierrors.IsConflict(err):
		// Only after several backed-off attempts lost to other writers of the same user.
		return scimerr.New(http.StatusConflict, "", "the user is being changed by other requests right now; retry in a second").WithRetryAfter(1)
	case apierrors.IsNotFound(err):
		return scimerr.New(http.StatusNotFound, "", "the user no longer exists")
	case apierrors.IsRequestEntityTooLargeError(err):
		return scimerr.New(http.StatusRequestEntityTooLarge, "", "the user is too large to store")
	case apierrors.IsTooManyRequests(err), apierrors.IsServerTimeout(err), apierrors.IsTimeout(err),
		apierrors.IsServiceUnavailable(err), errors.Is(err, context.DeadlineExceeded):
		s.log.Error(err, what)
		return scimerr.New(http.StatusServiceUnavailable, "", "the cluster is busy; retry later")
	}
	s.log.Error(err, what)
	return scimerr.New(http.StatusInternalServerError, "", "the user could not be stored; the error was logged")
}

func invalidDetail(err error) string {
	var se *apierrors.StatusError
	if errors.As(err, &se) && se.ErrStatus.Details != nil && len(se.ErrStatus.Details.Causes) > 0 {
		var parts []string
		for _, c := range se.ErrStatus.Details.Causes {
			f := strings.TrimPrefix(c.Field, "spec.")
			parts = append(parts, f+": "+c.Message)
		}
		return "invalid attribute values: " + strings.Join(parts, "; ")
	}
	return "invalid attribute values: " + err.Error()
}

// checkIfMatch enforces an If-Match header against the user's version (412 on mismatch).
func checkIfMatch(q *request, u *scimv1.StackUser) error {
	h := strings.TrimSpace(q.r.Header.Get("If-Match"))
	if h == "" || h == "*" {
		return nil
	}
	want := strconv.FormatInt(u.Generation, 10)
	for _, tag := range strings.Split(h, ",") {
		tag = strings.TrimSpace(tag)
		tag = strings.TrimPrefix(tag, "W/")
		if strings.Trim(tag, `"`) == want {
			return nil
		}
	}
	return scimerr.New(http.StatusPreconditionFailed, "", "the user has changed since version %s was read (now %s); read it again", truncate(h, 64), resource.Version(u))
}

// userOptions are the mapping options of the tenant; cur, when set, is the user a PUT or
// PATCH changes.
func (s *Server) userOptions(q *request, cur *scimv1.StackUser) resource.Options {
	o := resource.Options{RoleSchemas: q.settings.Spec.RoleAttributeSchemas}
	if cur != nil {
		o.RoleForm = cur.Spec.RoleAttribute
	}
	return o
}

// userByName returns a live (not deleting) user of the tenant with the userName,
// compared case-insensitively, other than except.
func (s *Server) userByName(ctx context.Context, q *request, userName, except string) (*scimv1.StackUser, error) {
	var list scimv1.StackUserList
	if err := s.opts.Client.List(ctx, &list, client.InNamespace(q.tenant.Namespace),
		client.MatchingFields{index.UserNameLower: index.UserNameKey(q.tenant.Name, userName)}); err != nil {
		return nil, s.apiError(err, "listing users by userName")
	}
	for i := range list.Items {
		u := &list.Items[i]
		if u.Name != except && u.DeletionTimestamp == nil && u.Spec.SettingsRef.Name == q.tenant.Name {
			return u, nil
		}
	}
	return nil, nil
}

func duplicate(userName, id string) error {
	return scimerr.New(http.StatusConflict, scimerr.Uniqueness, "a user with userName %q already exists (id %s); userName is unique regardless of case", truncate(userName, 256), id)
}

// entry is the audit entry of a SCIM write.
func (s *Server) entry(q *request, action string, changes []scimv1.FieldChange) scimv1.AuditEntry {
	return scimv1.AuditEntry{
		Time: metav1.Now(),
		Actor: scimv1.Actor{
			Kind:      scimv1.ActorIdentityProvider,
			Name:      q.tenantName(),
			UserAgent: truncate(q.r.UserAgent(), 256),
			RequestID: q.id,
		},
		Action:  action,
		Changes: changes,
		Result:  scimv1.ResultApplied,
	}
}

// annotate names the request on the object and leaves its audit entry there, in the same
// write as the change: one API write per request, and the entry cannot be lost. The
// reconciler moves it into status.history; the log line is written now.
// generation is the one the write leaves: the next one when it changes the spec.
func (s *Server) annotate(u *scimv1.StackUser, q *request, e scimv1.AuditEntry, generation int64) {
	if u.Annotations == nil {
		u.Annotations = map[string]string{}
	}
	now := e.Time.UTC()
	audit.SetLastRequest(u, audit.RequestInfo{
		RequestID:  e.Actor.RequestID,
		UserAgent:  e.Actor.UserAgent,
		Tenant:     e.Actor.Name,
		Time:       now.Format(time.RFC3339Nano),
		Generation: generation,
	})
	u.Annotations[audit.AnnotationLastModified] = now.Format(time.RFC3339)
	audit.AddPending(u, q.settings.EffectiveHistoryLimit(), e)
}

func (s *Server) getUser(q *request) {
	u, err := s.findUser(q.r.Context(), q, q.rest[0], false)
	if isNotFound(err) {
		if a := s.unmanagedByID(q.r.Context(), q, q.rest[0]); a != nil {
			s.writeAccount(q, a)
			return
		}
	}
	if err != nil {
		writeError(q.w, q.r, toSCIMError(err))
		return
	}
	s.writeUser(q, http.StatusOK, u)
}

func (s *Server) createUser(q *request) {
	ctx, cancel := writeContext(q.r)
	defer cancel()
	if err := s.doCreate(ctx, q); err != nil {
		writeError(q.w, q.r, toSCIMError(err))
	}
}

func (s *Server) doCreate(ctx context.Context, q *request) error {
	body, err := readBody(q.w, q.r, s.opts.MaxBodyBytes)
	if err != nil {
		return err
	}
	if err := resource.CheckSchemas(body); err != nil {
		return err
	}
	spec, err := resource.FromSCIM(body, s.userOptions(q, nil))
	if err != nil {
		return err
	}
	spec.SettingsRef.Name = q.tenant.Name
	if other, err := s.userByName(ctx, q, spec.UserName, ""); err != nil {
		return err
	} else if other != nil {
		return duplicate(other.Spec.UserName, other.Name)
	}
	u := newStackUser(q, NameFor(q.tenant.Name, spec.UserName), spec)
	entry := s.entry(q, audit.ActionCreate, audit.Diff(nil, audit.Flatten(&u.Spec)))
	s.annotate(u, q, entry, 1)
	err = s.opts.Client.Create(ctx, u, client.FieldOwner(audit.SCIMFieldManager))
	if apierrors.IsAlreadyExists(err) {
		var existing scimv1.StackUser
		gerr := s.opts.APIReader.Get(ctx, client.ObjectKeyFromObject(u), &existing)
		if gerr == nil && existing.Spec.SettingsRef.Name == q.tenant.Name && strings.EqualFold(existing.Spec.UserName, spec.UserName) {
			if existing.DeletionTimestamp != nil {
				return scimerr.New(http.StatusConflict, scimerr.Uniqueness, "a user with userName %q is being deleted; retry in a few seconds", truncate(spec.UserName, 256))
			}
			return duplicate(existing.Spec.UserName, existing.Name)
		}
		if gerr != nil && !apierrors.IsNotFound(gerr) {
			return s.apiError(gerr, "reading the existing user")
		}
		// The hashed name is held by a user renamed since, or by a hash collision.
		u.Name, u.GenerateName, u.ResourceVersion = "", "u-", ""
		err = s.opts.Client.Create(ctx, u, client.FieldOwner(audit.SCIMFieldManager))
	}
	if err != nil {
		return s.apiError(err, "creating user")
	}
	s.recent.put(client.ObjectKeyFromObject(u), u)
	s.own.record(s.users, u, false)
	s.recorder.LogEntries(u, entry)
	s.writeUser(q, http.StatusCreated, u)
	return nil
}

// newStackUser is a StackUser of the tenant as a SCIM request creates it.
func newStackUser(q *request, name string, spec scimv1.StackUserSpec) *scimv1.StackUser {
	return &scimv1.StackUser{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: q.tenant.Namespace,
			Name:      name,
			Labels:    map[string]string{scimv1.LabelSettings: q.tenant.Name},
			// The reconciler would add it with a write of its own; adding it here saves
			// one API write per provisioned user.
			Finalizers: []string{scimv1.Finalizer},
		},
		Spec: spec,
	}
}

func (s *Server) replaceUser(q *request) {
	ctx, cancel := writeContext(q.r)
	defer cancel()
	body, err := readBody(q.w, q.r, s.opts.MaxBodyBytes)
	if err == nil {
		err = resource.CheckSchemas(body)
	}
	if err == nil {
		err = s.update(ctx, q, audit.ActionReplace, func(cur *scimv1.StackUser) (scimv1.StackUserSpec, error) {
			// Okta PUTs back what it read, with its mapped values added: where one value
			// arrives in two forms, the one that differs from the stored user is the change.
			doc, _ := patch.DeepCopy(body).(map[string]any)
			opts := s.userOptions(q, cur)
			opts.Reconcile(resource.ToSCIM(cur, ""), doc, false)
			return resource.FromSCIM(doc, opts)
		})
	}
	if err != nil {
		writeError(q.w, q.r, toSCIMError(err))
	}
}

func (s *Server) patchUser(q *request) {
	ctx, cancel := writeContext(q.r)
	defer cancel()
	body, err := readBody(q.w, q.r, s.opts.MaxBodyBytes)
	if err == nil {
		var ops []patch.Operation
		ops, err = patch.Decode(body)
		if err == nil {
			schemas := append(append([]string{}, resource.KnownSchemas...), q.settings.Spec.RoleAttributeSchemas...)
			err = s.update(ctx, q, audit.ActionPatch, func(cur *scimv1.StackUser) (scimv1.StackUserSpec, error) {
				before := resource.ToSCIM(cur, "")
				after, err := patch.Apply(before, ops, patch.Options{Schemas: schemas})
				if err != nil {
					return scimv1.StackUserSpec{}, err
				}
				opts := s.userOptions(q, cur)
				opts.Reconcile(before, after, true)
				return resource.FromSCIM(after, opts)
			})
		}
	}
	if err != nil {
		writeError(q.w, q.r, toSCIMError(err))
	}
}

// update is the read-modify-write of PUT and PATCH, retried on write conflicts. A change
// that leaves the spec as it is writes nothing (Okta's GET-then-PUT round trip).
// maxUpdateAttempts bounds the read-modify-write retries of one PUT or PATCH.
const maxUpdateAttempts = 10

// updateBackoff is the pause before retry attempt+1: 5 ms doubling to 320 ms, ±50%.
func updateBackoff(attempt int) time.Duration {
	d := 5 * time.Millisecond << min(attempt, 6)
	return d/2 + time.Duration(rand.Int64N(int64(d)))
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) update(ctx context.Context, q *request, action string, mutate func(*scimv1.StackUser) (scimv1.StackUserSpec, error)) error {
	id := q.rest[0]
	for attempt := 0; ; attempt++ {
		cur, err := s.findUser(ctx, q, id, attempt > 0)
		if isNotFound(err) && attempt < maxUpdateAttempts {
			// A PUT or PATCH of an unmanaged site account links it (unmanaged.go).
			if a := s.unmanagedByID(ctx, q, id); a != nil {
				done, lerr := s.link(ctx, q, a, mutate)
				if done || lerr != nil {
					return lerr
				}
				continue // a StackUser of that name appeared meanwhile: update it
			}
			if attempt == 0 {
				// Neither: a concurrent request may have linked the account between the two
				// reads (it left the unmanaged set, its StackUser is not cached yet). Read live.
				continue
			}
		}
		if err != nil {
			return err
		}
		if err := checkIfMatch(q, cur); err != nil {
			return err
		}
		spec, err := mutate(cur)
		if err != nil {
			return err
		}
		spec.SettingsRef = cur.Spec.SettingsRef
		if SpecEqual(&cur.Spec, &spec) {
			s.writeUser(q, http.StatusOK, cur)
			return nil
		}
		if !strings.EqualFold(cur.Spec.UserName, spec.UserName) {
			if other, err := s.userByName(ctx, q, spec.UserName, cur.Name); err != nil {
				return err
			} else if other != nil {
				return duplicate(other.Spec.UserName, other.Name)
			}
		}
		upd := cur.DeepCopy()
		upd.Spec = spec
		entry := s.entry(q, action, audit.Diff(audit.Flatten(&cur.Spec), audit.Flatten(&upd.Spec)))
		s.annotate(upd, q, entry, cur.Generation+1)
		// The cache trims managedFields (internal/cachetrim); sending none keeps the
		// server's own.
		upd.ManagedFields = nil
		err = s.opts.Client.Update(ctx, upd, client.FieldOwner(audit.SCIMFieldManager))
		if apierrors.IsConflict(err) && attempt < maxUpdateAttempts {
			// Another write won (an IdP storm of PATCHes to one user, or the reconciler):
			// back off with jitter so the writers spread out, then re-read and re-apply.
			if werr := sleepCtx(ctx, updateBackoff(attempt)); werr != nil {
				return s.apiError(err, "updating user")
			}
			continue
		}
		if err != nil {
			return s.apiError(err, "updating user")
		}
		s.recent.put(client.ObjectKeyFromObject(upd), upd)
		s.own.record(s.users, upd, false)
		s.recorder.LogEntries(upd, entry)
		s.writeUser(q, http.StatusOK, upd)
		return nil
	}
}

func (s *Server) deleteUser(q *request) {
	ctx, cancel := writeContext(q.r)
	defer cancel()
	if err := s.doDelete(ctx, q); err != nil {
		writeError(q.w, q.r, toSCIMError(err))
		return
	}
	q.w.WriteHeader(http.StatusNoContent)
}

func (s *Server) doDelete(ctx context.Context, q *request) error {
	for attempt := 0; ; attempt++ {
		u, err := s.findUser(ctx, q, q.rest[0], attempt > 0)
		if isNotFound(err) && attempt == 0 {
			if a := s.unmanagedByID(ctx, q, q.rest[0]); a != nil {
				return notManaged(a)
			}
		}
		if err != nil {
			return err
		}
		if err := checkIfMatch(q, u); err != nil {
			return err
		}
		// Name the request on the object first, with its audit entry, so the finalizer's
		// site-side deactivation is attributed to it and records it. The resourceVersion
		// keeps a concurrent write's pending entry from being overwritten.
		info := u.DeepCopy()
		entry := s.entry(q, audit.ActionDelete, nil)
		s.annotate(info, q, entry, u.Generation)
		mp, _ := json.Marshal(map[string]any{"metadata": map[string]any{
			"resourceVersion": u.ResourceVersion,
			"annotations": map[string]string{
				audit.AnnotationLastSCIMRequest: info.Annotations[audit.AnnotationLastSCIMRequest],
				audit.AnnotationPendingAudit:    info.Annotations[audit.AnnotationPendingAudit],
			},
		}})
		err = s.opts.Client.Patch(ctx, u, client.RawPatch(types.MergePatchType, mp), client.FieldOwner(audit.SCIMFieldManager))
		if apierrors.IsConflict(err) && attempt < maxUpdateAttempts {
			if werr := sleepCtx(ctx, updateBackoff(attempt)); werr != nil {
				return s.apiError(err, "annotating user before deletion")
			}
			continue
		}
		if apierrors.IsNotFound(err) {
			return notFound(u.Name)
		}
		if err != nil {
			return s.apiError(err, "annotating user before deletion")
		}
		s.recorder.LogEntries(u, entry)
		uid := u.UID
		if err := s.opts.Client.Delete(ctx, u, client.Preconditions{UID: &uid}); err != nil {
			if apierrors.IsNotFound(err) {
				return notFound(u.Name)
			}
			return s.apiError(err, "deleting user")
		}
		s.recent.deleted(client.ObjectKeyFromObject(u), uid)
		s.own.record(s.users, u, true)
		return nil
	}
}

// SpecEqual compares two specs as SCIM sees them: unset active is true, empty objects
// are unset, and additionalAttributes compare as JSON values.
func SpecEqual(a, b *scimv1.StackUserSpec) bool {
	return equality.Semantic.DeepEqual(normalizeSpec(a), normalizeSpec(b))
}

func normalizeSpec(in *scimv1.StackUserSpec) *scimv1.StackUserSpec {
	s := in.DeepCopy()
	if s.Active == nil {
		t := true
		s.Active = &t
	}
	if s.Name != nil && *s.Name == (scimv1.Name{}) {
		s.Name = nil
	}
	if e := s.Enterprise; e != nil {
		if e.Manager != nil && *e.Manager == (scimv1.Manager{}) {
			e.Manager = nil
		}
		if *e == (scimv1.EnterpriseAttributes{}) {
			s.Enterprise = nil
		}
	}
	if len(s.Emails) == 0 {
		s.Emails = nil
	}
	if len(s.PhoneNumbers) == 0 {
		s.PhoneNumbers = nil
	}
	if s.AdditionalAttributes != nil {
		var v map[string]any
		dec := json.NewDecoder(bytes.NewReader(s.AdditionalAttributes.Raw))
		dec.UseNumber()
		if err := dec.Decode(&v); err == nil {
			if len(v) == 0 {
				s.AdditionalAttributes = nil
			} else if raw, err := json.Marshal(v); err == nil {
				s.AdditionalAttributes = &apiextensionsv1.JSON{Raw: raw}
			}
		}
	}
	return s
}

// listParams are the paging parameters of a list request.
type listParams struct {
	startIndex, count int
	filter            filter.Expression
}

func (s *Server) parseListParams(q *request) (listParams, error) {
	qv := q.r.URL.Query()
	p := listParams{startIndex: 1, count: s.opts.MaxCount}
	if v := strings.TrimSpace(qv.Get("startIndex")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return p, scimerr.BadRequest(scimerr.InvalidValue, "startIndex must be an integer, not %q", truncate(v, 32))
		}
		p.startIndex = max(n, 1)
	}
	if v := strings.TrimSpace(qv.Get("count")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return p, scimerr.BadRequest(scimerr.InvalidValue, "count must be an integer, not %q", truncate(v, 32))
		}
		p.count = min(max(n, 0), s.opts.MaxCount)
	}
	if v := qv.Get("filter"); v != "" {
		f, err := filter.Parse(v)
		if err != nil {
			return p, err
		}
		p.filter = f
	}
	return p, nil
}

func listResponse(total, startIndex int, resources []any) map[string]any {
	if resources == nil {
		resources = []any{}
	}
	return map[string]any{
		"schemas":      []any{resource.SchemaListResponse},
		"totalResults": total,
		"startIndex":   startIndex,
		"itemsPerPage": len(resources),
		"Resources":    resources,
	}
}

// candidates returns the tenant's users a filter can match, in list order: those with the
// userName (through the field index the uniqueness checks also use), externalId or id
// that the filter pins, else every user of the tenant. Without the view (a server with no
// cache) the field indexes stand in for it.
func (s *Server) candidates(ctx context.Context, q *request, f filter.Expression) ([]*scimv1.StackUser, error) {
	fields := client.MatchingFields{index.UserTenant: q.tenant.Name}
	switch attr, value, _ := filter.Lookup(f); {
	case attr == "id":
		u, err := s.findUser(ctx, q, value, false)
		if err != nil {
			if se := scimerr.As(err); se != nil && se.Status == http.StatusNotFound {
				return nil, nil
			}
			return nil, err
		}
		return []*scimv1.StackUser{u}, nil
	case attr == "userName":
		fields = client.MatchingFields{index.UserNameLower: index.UserNameKey(q.tenant.Name, value)}
	case attr == "externalId" && s.users != nil:
		return s.users.ByExternalID(q.tenant.Namespace, q.tenant.Name, value), nil
	case s.users != nil:
		return s.users.All(q.tenant.Namespace, q.tenant.Name), nil
	}
	var list scimv1.StackUserList
	if err := s.opts.Client.List(ctx, &list, client.InNamespace(q.tenant.Namespace), fields, client.UnsafeDisableDeepCopy); err != nil {
		return nil, s.apiError(err, "listing users")
	}
	out := make([]*scimv1.StackUser, len(list.Items))
	for i := range list.Items {
		out[i] = &list.Items[i]
	}
	slices.SortFunc(out, userview.Compare)
	return out, nil
}

func (s *Server) listUsers(q *request) {
	p, err := s.parseListParams(q)
	if err != nil {
		writeError(q.w, q.r, toSCIMError(err))
		return
	}
	// Read your writes: the view (and the cache indexes, fed by the same informer) must
	// show what this replica already acknowledged.
	s.own.await(q.r.Context(), s.users, q.tenant.Namespace)
	from := p.startIndex - 1
	var total int
	var page []*scimv1.StackUser
	if p.filter == nil && s.users != nil {
		// The common case (imports, Test API Credentials): one page of the ordered view.
		total, page = s.users.Page(q.tenant.Namespace, q.tenant.Name, from, p.count)
	} else {
		items, err := s.candidates(q.r.Context(), q, p.filter)
		if err != nil {
			writeError(q.w, q.r, toSCIMError(err))
			return
		}
		hits := items[:0:0]
		for _, u := range items {
			if u.DeletionTimestamp != nil || u.Spec.SettingsRef.Name != q.tenant.Name {
				continue
			}
			if p.filter != nil && !filter.Match(p.filter, resource.ToSCIM(u, s.location(q, u.Name))) {
				continue
			}
			hits = append(hits, u)
		}
		// Two StackUsers made with kubectl may share a userName: only its owner is listed.
		hits = tenant.DistinctUserNames(hits)
		total = len(hits)
		if from < total && p.count > 0 {
			page = hits[from:min(from+p.count, total)]
		}
	}
	// Unmanaged site accounts follow the StackUsers (unmanaged.go). Read after the page:
	// an account linked meanwhile (the common race during an import) is then left out
	// of both rather than shown twice.
	extra := s.unmanagedMatching(q.r.Context(), q, p.filter)
	docs := make([]any, 0, len(page))
	for _, u := range page {
		u, gone := s.recent.overlay(client.ObjectKeyFromObject(u), u)
		if gone {
			continue
		}
		docs = append(docs, s.project(q, s.withGroups(q, u, resource.ToSCIM(u, s.location(q, u.Name)))))
	}
	// The unmanaged accounts take positions total+1 onwards.
	if at, room := max(from-total, 0), p.count-len(page); room > 0 && at < len(extra) {
		for i := range extra[at:min(at+room, len(extra))] {
			docs = append(docs, s.accountDoc(q, &extra[at+i]))
		}
	}
	total += len(extra)
	writeJSON(q.w, q.r, http.StatusOK, listResponse(total, p.startIndex, docs))
}
