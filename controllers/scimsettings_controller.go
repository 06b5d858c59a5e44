package controllers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/clip"
	"github.com/stackscim/stack-scim-operator/internal/index"
	scimtenant "github.com/stackscim/stack-scim-operator/internal/tenant"
)

// Reasons of the ScimSettings conditions (CredentialsValid, SiteReachable, Ready).
const (
	// SettingsReasonSecretNotFound: a referenced Secret does not exist.
	SettingsReasonSecretNotFound = "SecretNotFound"
	// SettingsReasonSecretKeyMissing: a referenced Secret lacks the referenced key.
	SettingsReasonSecretKeyMissing = "SecretKeyMissing"
	// SettingsReasonTokenEmpty: a referenced key holds only whitespace.
	SettingsReasonTokenEmpty = "TokenEmpty"
	// SettingsReasonTokensFound: every referenced token is present.
	SettingsReasonTokensFound = "TokensFound"
	// SettingsReasonCredentialsInvalid: the site cannot be tested because its token is unusable.
	SettingsReasonCredentialsInvalid = "CredentialsInvalid"
	// SettingsReasonSiteAnswered: the site listed users with the configured token.
	SettingsReasonSiteAnswered = "SiteAnswered"
	// SettingsReasonSiteUnreachable: no HTTP answer (DNS, connection, TLS, timeout).
	SettingsReasonSiteUnreachable = "SiteUnreachable"
	// SettingsReasonSiteUnauthorized: the site rejected the token (401 or 403).
	SettingsReasonSiteUnauthorized = "SiteUnauthorized"
	// SettingsReasonSiteError: the site answered, but not with a SCIM user list.
	SettingsReasonSiteError = "SiteError"
	// SettingsReasonBasePathConflict: an older ScimSettings already claims the same base path.
	SettingsReasonBasePathConflict = "BasePathConflict"
	// SettingsReasonDisabled: spec.enabled is false.
	SettingsReasonDisabled = "Disabled"
	// SettingsReasonSpecInvalid: a spec field stored before the schema checked it cannot
	// be decoded (e.g. resyncPeriod: 1d); its default applies until it is fixed.
	SettingsReasonSpecInvalid = "SpecInvalid"
	// SettingsReasonAvailable: the tenant serves SCIM and reaches its site.
	SettingsReasonAvailable = "Available"
)

// Defaults of the ScimSettingsReconciler's tunables.
const (
	DefaultSiteRecheckInterval = 5 * time.Minute
	DefaultMaxProbeTimeout     = 10 * time.Second
	DefaultCountDelay          = 5 * time.Second
	firstProbeBackoff          = 10 * time.Second
)

// ScimSettingsReconciler checks a tenant's Secrets and site credentials and publishes its
// SCIM endpoint, user counts and Ready condition. It writes only status.conditions,
// observedGeneration, basePath, url and the StackUser-derived user counts; other status
// fields belong to the SCIM server and the StackUser reconciler.
type ScimSettingsReconciler struct {
	// Client should be the manager's cached client.
	Client client.Client
	// Tenants reads tenants and their Secrets (internal/tenant.Reader); Client when nil.
	Tenants client.Reader
	// Cache, when set, is the manager's cache: users are counted in its index without
	// copying them. Without it they are listed through Client.
	Cache cache.Cache
	// ExternalURL is the public base URL of the SCIM server; status.url is ExternalURL +
	// the base path. Empty leaves status.url unset.
	ExternalURL string
	// Recorder, when set, receives an Event whenever Ready changes.
	Recorder events.EventRecorder
	// HTTPClient probes the site; a default client when nil.
	HTTPClient *http.Client
	// SiteRecheckInterval is how often a healthy site is tested again.
	SiteRecheckInterval time.Duration
	// MaxProbeTimeout bounds one site probe, whatever spec.site.timeout says: a worker must
	// not hang for the site's (long) request timeout.
	MaxProbeTimeout time.Duration
	// CountDelay coalesces StackUser changes: at most one count per tenant per CountDelay,
	// so a bulk import of 100k users does not cause 100k reconciles.
	CountDelay time.Duration

	probes probeCache
}

// +kubebuilder:rbac:groups=scim.stackscim.io,resources=scimsettings,verbs=get;list;watch
// +kubebuilder:rbac:groups=scim.stackscim.io,resources=scimsettings/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=scim.stackscim.io,resources=stackusers,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile runs the phases in order and writes the status fields it owns once.
func (r *ScimSettingsReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var s scimv1.ScimSettings
	if err := r.Client.Get(ctx, req.NamespacedName, &s); err != nil {
		if apierrors.IsNotFound(err) {
			r.probes.forget(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	st := &tenantState{conditions: slices.Clone(s.Status.Conditions)}
	phases := []func(context.Context, *scimv1.ScimSettings, *tenantState) error{
		r.checkCredentials,
		r.checkBasePath,
		r.checkSite,
		r.countUsers,
	}
	for _, phase := range phases {
		// Every expected failure is a condition; an error here is a transient API error,
		// retried with backoff without touching status.
		if err := phase(ctx, &s, st); err != nil {
			return ctrl.Result{}, err
		}
	}
	r.summarize(&s, st)
	if err := r.patchStatus(ctx, &s, st); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: st.requeueAfter}, nil
}

// tenantState collects what the phases observed, for the status patch.
type tenantState struct {
	conditions   []metav1.Condition
	basePath     string
	url          string
	conflictWith string
	users        scimv1.UserCounts
	// siteToken is held in memory for the probe only; it never reaches status or logs.
	siteToken    string
	requeueAfter time.Duration
}

func (st *tenantState) setCondition(s *scimv1.ScimSettings, typ string, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(&st.conditions, metav1.Condition{
		Type:               typ,
		Status:             status,
		Reason:             reason,
		Message:            clipMessage(message, 1024),
		ObservedGeneration: s.Generation,
	})
}

func (st *tenantState) requeueWithin(d time.Duration) {
	if d > 0 && (st.requeueAfter == 0 || d < st.requeueAfter) {
		st.requeueAfter = d
	}
}

// checkCredentials reads every referenced token through internal/tenant. A missing
// nextKey is reported in the message but does not fail the check: the current key alone
// still authenticates, and an admin finishing a rotation may drop it from the Secret
// before removing spec.nextKey.
func (r *ScimSettingsReconciler) checkCredentials(ctx context.Context, s *scimv1.ScimSettings, st *tenantState) error {
	_, next, bearerErr := scimtenant.BearerTokens(ctx, r.tenants(), s)
	siteToken, siteErr := scimtenant.SiteToken(ctx, r.tenants(), s)
	for _, err := range []error{bearerErr, siteErr} {
		if _, ok := scimtenant.AsError(err); err != nil && !ok {
			return err
		}
	}
	for _, err := range []error{bearerErr, siteErr} {
		if te, ok := scimtenant.AsError(err); ok {
			st.setCondition(s, scimv1.ConditionCredentialsValid, metav1.ConditionFalse, string(te.Problem), te.Message)
			return nil
		}
	}
	st.siteToken = siteToken
	msg := "bearer token and site token are present"
	if next != nil {
		msg += "; " + next.Message + "; only key " + scimtenant.Key(s.Spec.BearerTokenSecretRef.Key) + " is accepted"
	}
	st.setCondition(s, scimv1.ConditionCredentialsValid, metav1.ConditionTrue, SettingsReasonTokensFound, msg)
	return nil
}

// checkBasePath publishes the base path and URL and finds out whether an older tenant
// already claims the same path (internal/tenant decides which one owns it).
func (r *ScimSettingsReconciler) checkBasePath(ctx context.Context, s *scimv1.ScimSettings, st *tenantState) error {
	st.basePath = s.EffectiveBasePath()
	if r.ExternalURL != "" {
		st.url = strings.TrimRight(r.ExternalURL, "/") + st.basePath
	}
	owner, err := scimtenant.OwnerOf(ctx, r.Client, st.basePath)
	if err != nil {
		return err
	}
	if owner != nil && owner.UID != s.UID && scimtenant.ClaimsEarlier(owner, s) {
		st.conflictWith = owner.Namespace + "/" + owner.Name
	}
	return nil
}

// checkSite tests the site credentials like Okta's "Test API Credentials": list one user.
// Results are cached per tenant and probeFingerprint (URL, token hash, timeout) so that the
// frequent count-only reconciles do not hit the site; a changed spec or token probes at once.
func (r *ScimSettingsReconciler) checkSite(ctx context.Context, s *scimv1.ScimSettings, st *tenantState) error {
	key := types.NamespacedName{Namespace: s.Namespace, Name: s.Name}
	if st.siteToken == "" {
		r.probes.forget(key)
		st.setCondition(s, scimv1.ConditionSiteReachable, metav1.ConditionUnknown, SettingsReasonCredentialsInvalid,
			"the site token is not usable, see the CredentialsValid condition")
		return nil
	}
	timeout := r.maxProbeTimeout()
	if t := s.Spec.Site.Timeout; t != nil && t.Duration > 0 && t.Duration < timeout {
		timeout = t.Duration
	}
	fp := probeFingerprint(s.Spec.Site.URL, st.siteToken, timeout)
	now := time.Now()
	res, ok := r.probes.lookup(key, fp, now)
	if !ok {
		res = probeSite(ctx, r.httpClient(), s.Spec.Site.URL, st.siteToken, timeout)
		res = r.probes.store(key, fp, res, now, r.recheckInterval())
	}
	st.setCondition(s, scimv1.ConditionSiteReachable, res.status, res.reason, res.message)
	st.requeueWithin(res.nextAt.Sub(now))
	return nil
}

// countUsers counts the tenant's StackUsers in the cache's tenant index, without copying
// them (see index.EachUser).
func (r *ScimSettingsReconciler) countUsers(ctx context.Context, s *scimv1.ScimSettings, st *tenantState) error {
	reader := client.Reader(r.Client)
	if r.Cache != nil {
		reader = r.Cache
	}
	var c scimv1.UserCounts
	err := index.EachUser(ctx, reader, s.Namespace, s.Name, func(u *scimv1.StackUser) {
		if u.DeletionTimestamp != nil {
			return // on its way out: the finalizer is deactivating it on the site
		}
		c.Total++
		if u.IsActive() {
			c.Active++
		}
		switch {
		case u.Spec.Role == nil:
			c.UnmanagedRole++
		case *u.Spec.Role == scimv1.RoleAdmin:
			c.Admins++
		case *u.Spec.Role == scimv1.RoleModerator:
			c.Moderators++
		default:
			c.Registered++
		}
	})
	if err != nil {
		return fmt.Errorf("counting StackUsers of %s: %w", s.Name, err)
	}
	st.users = c
	return nil
}

// summarize derives Ready from the other findings; the first problem found names it.
func (r *ScimSettingsReconciler) summarize(s *scimv1.ScimSettings, st *tenantState) {
	creds := meta.FindStatusCondition(st.conditions, scimv1.ConditionCredentialsValid)
	site := meta.FindStatusCondition(st.conditions, scimv1.ConditionSiteReachable)
	status, reason, message := metav1.ConditionTrue, SettingsReasonAvailable,
		fmt.Sprintf("SCIM base path %s is served and the site answers", st.basePath)
	switch {
	case st.conflictWith != "":
		status, reason = metav1.ConditionFalse, SettingsReasonBasePathConflict
		message = fmt.Sprintf("base path %s is already claimed by ScimSettings %s, created earlier; set a different spec.basePath",
			st.basePath, st.conflictWith)
	case len(s.SpecProblems()) > 0:
		status, reason = metav1.ConditionFalse, SettingsReasonSpecInvalid
		message = strings.Join(s.SpecProblems(), "; ") + "; the tenant keeps serving SCIM, fix the spec"
	case !s.IsEnabled():
		status, reason, message = metav1.ConditionFalse, SettingsReasonDisabled, "the SCIM tenant is switched off (spec.enabled is false)"
	case creds.Status != metav1.ConditionTrue:
		status, reason, message = metav1.ConditionFalse, creds.Reason, creds.Message
	case site.Status != metav1.ConditionTrue:
		status, reason, message = metav1.ConditionFalse, site.Reason, site.Message
	}
	old := meta.FindStatusCondition(s.Status.Conditions, scimv1.ConditionReady)
	st.setCondition(s, scimv1.ConditionReady, status, reason, message)
	if r.Recorder != nil && (old == nil || old.Status != status || old.Reason != reason) {
		eventType := corev1.EventTypeNormal
		if status != metav1.ConditionTrue {
			eventType = corev1.EventTypeWarning
		}
		r.Recorder.Eventf(s, nil, eventType, reason, "CheckTenant", "%s", clipMessage(message, 1024))
	}
}

// patchStatus writes only the fields this reconciler owns, with a JSON merge patch:
// lastRequest, lastAuthFailure, lastResyncTime and users.siteOnly stay untouched. The
// conditions list is replaced whole by a merge patch, so that write carries the
// resourceVersion it was computed from.
func (r *ScimSettingsReconciler) patchStatus(ctx context.Context, s *scimv1.ScimSettings, st *tenantState) error {
	old := s.Status
	var oldUsers scimv1.UserCounts
	if old.Users != nil {
		oldUsers = *old.Users
		oldUsers.SiteOnly = 0
	}
	conditionsChanged := !settingsConditionsEqual(old.Conditions, st.conditions)
	if !conditionsChanged && old.ObservedGeneration == s.Generation && old.BasePath == st.basePath &&
		old.URL == st.url && old.Users != nil && oldUsers == st.users {
		return nil
	}
	status := map[string]any{
		"observedGeneration": s.Generation,
		"basePath":           st.basePath,
		"url":                jsonNullIfEmpty(st.url),
		"users": map[string]any{
			"total":         st.users.Total,
			"active":        st.users.Active,
			"registered":    st.users.Registered,
			"moderators":    st.users.Moderators,
			"admins":        st.users.Admins,
			"unmanagedRole": st.users.UnmanagedRole,
		},
	}
	patch := map[string]any{"status": status}
	if conditionsChanged {
		status["conditions"] = st.conditions
		patch["metadata"] = map[string]any{"resourceVersion": s.ResourceVersion}
	}
	data, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	if err := r.Client.Status().Patch(ctx, s, client.RawPatch(types.MergePatchType, data)); err != nil {
		return fmt.Errorf("patching ScimSettings status: %w", err)
	}
	return nil
}

func settingsConditionsEqual(a, b []metav1.Condition) bool {
	return slices.EqualFunc(a, b, func(x, y metav1.Condition) bool {
		return x.Type == y.Type && x.Status == y.Status && x.Reason == y.Reason && x.Message == y.Message &&
			x.ObservedGeneration == y.ObservedGeneration && x.LastTransitionTime.Equal(&y.LastTransitionTime)
	})
}

// SetupWithManager registers the reconciler and its watches.
func (r *ScimSettingsReconciler) SetupWithManager(mgr ctrl.Manager) error {
	// Other components write status (lastRequest on every SCIM call): only spec and
	// metadata changes need a reconcile.
	specChanged := predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{},
		predicate.LabelChangedPredicate{})
	return ctrl.NewControllerManagedBy(mgr).
		Named("scimsettings").
		For(&scimv1.ScimSettings{}, builder.WithPredicates(specChanged)).
		Watches(&scimv1.ScimSettings{}, r.basePathPeers(), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.settingsForSecret)).
		Watches(&scimv1.StackUser{}, r.tenantOfUser()).
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		Complete(r)
}

// settingsForSecret maps a Secret to the tenants referring to it, so a token rotation
// re-checks only those.
func (r *ScimSettingsReconciler) settingsForSecret(ctx context.Context, o client.Object) []reconcile.Request {
	return secretTenants(ctx, r.Client, o, scimtenant.AnySecret)
}

// basePathPeers re-queues every tenant sharing a base path with one that was created,
// deleted or changed, so a conflict resolves as soon as the older claimant goes away.
func (r *ScimSettingsReconciler) basePathPeers() handler.EventHandler {
	enqueue := func(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request], self client.Object, paths ...string) {
		for _, p := range slices.Compact(paths) {
			var list scimv1.ScimSettingsList
			if err := r.Client.List(ctx, &list, client.MatchingFields{index.SettingsBasePath: p}, client.UnsafeDisableDeepCopy); err != nil {
				ctrl.LoggerFrom(ctx).Error(err, "listing ScimSettings by base path", "basePath", p)
				continue
			}
			for i := range list.Items {
				if list.Items[i].UID != self.GetUID() {
					q.Add(reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
				}
			}
		}
	}
	path := func(o client.Object) string { return o.(*scimv1.ScimSettings).EffectiveBasePath() }
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, q, e.Object, path(e.Object))
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, q, e.ObjectNew, path(e.ObjectOld), path(e.ObjectNew))
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, q, e.Object, path(e.Object))
		},
	}
}

// tenantOfUser queues a user's tenant for a recount after CountDelay. The queue keeps the
// earliest due time of an item, so a burst of user events costs one reconcile per tenant
// per CountDelay. Updates that leave tenant, role and activation alone are ignored.
func (r *ScimSettingsReconciler) tenantOfUser() handler.EventHandler {
	delay := r.CountDelay
	if delay <= 0 {
		delay = DefaultCountDelay
	}
	enqueue := func(q workqueue.TypedRateLimitingInterface[reconcile.Request], o client.Object) {
		u := o.(*scimv1.StackUser)
		q.AddAfter(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: u.Namespace, Name: u.Spec.SettingsRef.Name}}, delay)
	}
	return handler.Funcs{
		CreateFunc: func(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(q, e.Object)
		},
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			oldU, newU := e.ObjectOld.(*scimv1.StackUser), e.ObjectNew.(*scimv1.StackUser)
			if oldU.Spec.SettingsRef == newU.Spec.SettingsRef && oldU.IsActive() == newU.IsActive() &&
				userRoleOrEmpty(oldU) == userRoleOrEmpty(newU) && (oldU.DeletionTimestamp == nil) == (newU.DeletionTimestamp == nil) {
				return
			}
			enqueue(q, oldU)
			enqueue(q, newU)
		},
		DeleteFunc: func(_ context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(q, e.Object)
		},
	}
}

func userRoleOrEmpty(u *scimv1.StackUser) scimv1.Role {
	if u.Spec.Role == nil {
		return ""
	}
	return *u.Spec.Role
}

func (r *ScimSettingsReconciler) tenants() client.Reader {
	if r.Tenants != nil {
		return r.Tenants
	}
	return r.Client
}

func (r *ScimSettingsReconciler) httpClient() *http.Client {
	if r.HTTPClient != nil {
		return r.HTTPClient
	}
	return http.DefaultClient
}

func (r *ScimSettingsReconciler) recheckInterval() time.Duration {
	if r.SiteRecheckInterval > 0 {
		return r.SiteRecheckInterval
	}
	return DefaultSiteRecheckInterval
}

func (r *ScimSettingsReconciler) maxProbeTimeout() time.Duration {
	if r.MaxProbeTimeout > 0 {
		return r.MaxProbeTimeout
	}
	return DefaultMaxProbeTimeout
}

// probeResult is the outcome of one site probe and when the next one is due.
type probeResult struct {
	status  metav1.ConditionStatus
	reason  string
	message string
	nextAt  time.Time
}

// probeSite lists one user: GET <url>/users?startIndex=1&count=1 with the site token.
func probeSite(ctx context.Context, hc *http.Client, siteURL, token string, timeout time.Duration) probeResult {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	target := strings.TrimRight(siteURL, "/") + "/users?startIndex=1&count=1"
	fail := func(reason, format string, args ...any) probeResult {
		msg := strings.ReplaceAll(fmt.Sprintf(format, args...), token, "[redacted]")
		return probeResult{status: metav1.ConditionFalse, reason: reason, message: msg}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return fail(SettingsReasonSiteError, "invalid site URL: %v", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/scim+json, application/json")
	req.Header.Set("User-Agent", "stack-scim-operator")
	resp, err := hc.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fail(SettingsReasonSiteUnreachable, "GET %s: no answer within %s", target, timeout)
		}
		return fail(SettingsReasonSiteUnreachable, "%v", err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fail(SettingsReasonSiteUnreachable, "GET %s: reading the answer: %v", target, err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return fail(SettingsReasonSiteUnauthorized, "the site rejected the site token (HTTP %d)%s", resp.StatusCode, siteSays(body))
	case resp.StatusCode != http.StatusOK:
		return fail(SettingsReasonSiteError, "GET %s answered HTTP %d%s", target, resp.StatusCode, siteSays(body))
	}
	var list struct {
		Schemas      []string `json:"schemas"`
		TotalResults *int     `json:"totalResults"`
	}
	if err := json.Unmarshal(body, &list); err != nil || list.TotalResults == nil {
		return fail(SettingsReasonSiteError, "GET %s answered HTTP 200 but not with a SCIM ListResponse; check site.url", target)
	}
	return probeResult{status: metav1.ConditionTrue, reason: SettingsReasonSiteAnswered,
		message: fmt.Sprintf("the site accepted the token and reports %d users", *list.TotalResults)}
}

// siteSays extracts the site's error text ({"ErrorMessage": ...}, or SCIM's "detail").
func siteSays(body []byte) string {
	var e struct {
		ErrorMessage string `json:"ErrorMessage"`
		Detail       string `json:"detail"`
	}
	msg := ""
	if json.Unmarshal(body, &e) == nil {
		msg = e.ErrorMessage
		if msg == "" {
			msg = e.Detail
		}
	}
	if msg == "" {
		msg = string(bytes.TrimSpace(body))
	}
	msg = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, msg)
	if msg = clipMessage(strings.TrimSpace(msg), 256); msg == "" {
		return ""
	}
	return ": " + msg
}

// probeCache remembers each tenant's last probe, so that reconciles triggered by user
// counts or Secret metadata do not hit the site. It is per process: a new leader probes
// once at start, which is what we want anyway.
type probeCache struct {
	mu      sync.Mutex
	entries map[types.NamespacedName]*probeEntry
	// failures backs failed probes off (the reconcilers' retry policy).
	failures *retryPolicy
}

type probeEntry struct {
	fingerprint string
	result      probeResult
}

func (c *probeCache) lookup(key types.NamespacedName, fp string, now time.Time) (probeResult, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[key]
	if e == nil || e.fingerprint != fp || !now.Before(e.result.nextAt) {
		return probeResult{}, false
	}
	return e.result, true
}

// store records a probe and schedules the next one: the recheck interval (with jitter so
// that tenants spread out) after success, exponential backoff from 10s after a failure.
func (c *probeCache) store(key types.NamespacedName, fp string, res probeResult, now time.Time, interval time.Duration) probeResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[types.NamespacedName]*probeEntry{}
	}
	if c.failures == nil {
		c.failures = newRetryPolicy(firstProbeBackoff, time.Hour)
	}
	e := c.entries[key]
	if e == nil || e.fingerprint != fp {
		// A changed URL, token or timeout starts afresh.
		e = &probeEntry{fingerprint: fp}
		c.entries[key] = e
		c.failures.reset(key)
	}
	wait := interval
	if res.status == metav1.ConditionTrue {
		c.failures.reset(key)
		wait = interval - time.Duration(rand.Int64N(int64(interval/10)+1))
	} else {
		wait = min(c.failures.next(key, 0), interval)
	}
	res.nextAt = now.Add(wait)
	e.result = res
	return res
}

func (c *probeCache) forget(key types.NamespacedName) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, key)
	if c.failures != nil {
		c.failures.reset(key)
	}
}

// probeFingerprint identifies what a probe depends on; the token enters only as a hash.
func probeFingerprint(url, token string, timeout time.Duration) string {
	h := sha256.Sum256([]byte(url + "\x00" + token + "\x00" + timeout.String()))
	return hex.EncodeToString(h[:])
}

func jsonNullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func clipMessage(s string, n int) string { return clip.String(s, n) }
