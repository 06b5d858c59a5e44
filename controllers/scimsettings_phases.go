package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/index"
	"github.com/stackscim/stack-scim-operator/internal/progress"
	"github.com/stackscim/stack-scim-operator/internal/site"
	scimtenant "github.com/stackscim/stack-scim-operator/internal/tenant"
)

// The phases of the ScimSettings reconciler. Each records what it found in the
// tenantState; an error is a transient API error.

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
	if siteErr == nil {
		// The site can be probed even while the IdP token is unusable.
		st.siteToken = siteToken
	}
	for _, err := range []error{bearerErr, siteErr} {
		if te, ok := scimtenant.AsError(err); ok {
			st.setCondition(s, scimv1.ConditionCredentialsValid, metav1.ConditionFalse, string(te.Problem), te.Message)
			return nil
		}
	}
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
		res = r.probeSite(ctx, s.Spec.Site.URL, st.siteToken, timeout)
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
	plan := newPlanTally()
	backlog := 0
	err := index.EachUser(ctx, reader, s.Namespace, s.Name, func(u *scimv1.StackUser) {
		plan.add(u)
		if awaiting(u) {
			backlog++
		}
		if u.DeletionTimestamp != nil {
			return // on its way out: the finalizer is deactivating it on the site
		}
		c.Total++
		if u.IsActive() {
			c.Active++
		}
		switch userRoleOrEmpty(u) {
		case "":
			c.UnmanagedRole++
		case scimv1.RoleAdmin:
			c.Admins++
		case scimv1.RoleModerator:
			c.Moderators++
		default:
			c.Registered++
		}
	})
	if err != nil {
		return fmt.Errorf("counting StackUsers of %s: %w", s.Name, err)
	}
	st.users = c
	st.plan = plan.summary()
	st.backlog = r.backlog(s, backlog)
	if st.backlog != nil {
		// The rate and the estimate move while work is left, even without user events.
		st.requeueWithin(backlogRefresh)
	}
	return nil
}

// backlogRefresh is how often the backlog's rate and estimate are recomputed while work
// is left.
const backlogRefresh = 15 * time.Second

// backlog is the tenant's status.backlog: n users waiting, the rate the StackUser
// reconciler finished changes at over the last minute, and when n are done at that rate.
func (r *ScimSettingsReconciler) backlog(s *scimv1.ScimSettings, n int) *scimv1.Backlog {
	if n == 0 {
		return nil
	}
	b := &scimv1.Backlog{Users: int32(n)}
	rate := r.Progress.PerMinute(types.NamespacedName{Namespace: s.Namespace, Name: s.Name})
	b.PerMinute = int32(math.Round(rate))
	if at, ok := progress.ETA(time.Now(), n, rate); ok {
		b.EstimatedCompletionTime = &metav1.Time{Time: at.Truncate(time.Second)}
	}
	return b
}

// awaiting reports whether the StackUser reconciler has a change of u still to finish:
// a generation it has not evaluated, or a deletion. Users held by the brake, or planned
// in Observe mode at their current generation, wait for a person instead.
func awaiting(u *scimv1.StackUser) bool {
	evaluated := u.EvaluatedGeneration() >= u.Generation
	if u.Status.HeldSince != nil || (evaluated && len(u.Status.PlannedChanges) > 0) {
		return false
	}
	return !evaluated || u.DeletionTimestamp != nil
}

// checkHeld sets ChangesHeld from the users the brake holds (counted by countUsers).
func (r *ScimSettingsReconciler) checkHeld(_ context.Context, s *scimv1.ScimSettings, st *tenantState) error {
	if st.plan.Held == 0 {
		msg := "no deactivation or demotion is held"
		if n := s.MaxDeactivationsPerHour(); n > 0 {
			msg += fmt.Sprintf(" (maxDeactivationsPerHour %d)", n)
		}
		st.setCondition(s, scimv1.ConditionChangesHeld, metav1.ConditionFalse, SettingsReasonNoneHeld, msg)
		return nil
	}
	msg := fmt.Sprintf("%d deactivations or demotions held by the brake (maxDeactivationsPerHour %d), oldest first: %s; they go out as the hour rolls on, when the cap is raised, or when annotation %s gets a new value",
		st.plan.Held, s.MaxDeactivationsPerHour(), strings.Join(st.plan.HeldUsers, ", "), scimv1.ReleaseHeldAnnotation)
	st.setCondition(s, scimv1.ConditionChangesHeld, metav1.ConditionTrue, SettingsReasonChangesHeld, msg)
	return nil
}

// planTally sums the StackUsers' planned and held changes for status.plan.
type planTally struct {
	sum  scimv1.PlanSummary
	held []heldUser
}

type heldUser struct {
	name  string
	since time.Time
}

func newPlanTally() *planTally { return &planTally{} }

func (p *planTally) add(u *scimv1.StackUser) {
	if len(u.Status.PlannedChanges) == 0 && u.Status.HeldSince == nil {
		return
	}
	p.sum.Users++
	if u.Status.HeldSince != nil {
		p.sum.Held++
		p.held = append(p.held, heldUser{name: u.Spec.UserName, since: u.Status.HeldSince.Time})
	}
	for _, c := range u.Status.PlannedChanges {
		switch c.Action {
		case scimv1.PlanLink:
			p.sum.Link++
		case scimv1.PlanCreate:
			p.sum.Create++
		case scimv1.PlanUpdate:
			p.sum.Update++
		case scimv1.PlanActivate:
			p.sum.Activate++
		case scimv1.PlanDeactivate:
			p.sum.Deactivate++
		case scimv1.PlanPromote:
			p.sum.Promote++
		case scimv1.PlanDemote:
			p.sum.Demote++
		case scimv1.PlanDelete:
			p.sum.Delete++
		}
	}
}

// summary is the tally with the first held users named, oldest hold first.
func (p *planTally) summary() scimv1.PlanSummary {
	slices.SortFunc(p.held, func(a, b heldUser) int {
		if c := a.since.Compare(b.since); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	out := p.sum
	out.HeldUsers = nil
	for _, h := range p.held[:min(len(p.held), 10)] {
		out.HeldUsers = append(out.HeldUsers, h.name)
	}
	return out
}

// probeResult is the outcome of one site probe and when the next one is due.
type probeResult struct {
	status  metav1.ConditionStatus
	reason  string
	message string
	nextAt  time.Time
}

// probeSite lists one user through internal/site (no redirects followed, bodies clipped,
// the token scrubbed from errors), with no retry: the probe cache backs off instead.
func (r *ScimSettingsReconciler) probeSite(ctx context.Context, siteURL, token string, timeout time.Duration) probeResult {
	fail := func(reason, format string, args ...any) probeResult {
		msg := strings.ReplaceAll(fmt.Sprintf(format, args...), token, "[redacted]")
		return probeResult{status: metav1.ConditionFalse, reason: reason, message: msg}
	}
	target := strings.TrimRight(siteURL, "/") + "/users"
	sc, err := site.New(site.Config{URL: siteURL, Token: token, Timeout: timeout, MaxRetries: -1, HTTPClient: r.HTTPClient})
	if err != nil {
		return fail(SettingsReasonSiteError, "invalid site URL: %v", err)
	}
	total, err := sc.Probe(ctx)
	var se *site.Error
	switch {
	case err == nil:
		return probeResult{status: metav1.ConditionTrue, reason: SettingsReasonSiteAnswered,
			message: fmt.Sprintf("the site accepted the token and reports %d users", total)}
	case errors.Is(err, site.ErrNotSCIM):
		return fail(SettingsReasonSiteError, "GET %s answered HTTP 200 but not with a SCIM ListResponse; check site.url", target)
	case errors.Is(err, context.DeadlineExceeded):
		return fail(SettingsReasonSiteUnreachable, "GET %s: no answer within %s", target, timeout)
	case site.IsUnauthorized(err) && errors.As(err, &se):
		return fail(SettingsReasonSiteUnauthorized, "the site rejected the site token (HTTP %d)%s", se.StatusCode, siteSays(se))
	case errors.As(err, &se):
		return fail(SettingsReasonSiteError, "GET %s answered HTTP %d%s", target, se.StatusCode, siteSays(se))
	default:
		return fail(SettingsReasonSiteUnreachable, "%v", err)
	}
}

// siteSays is the site's own text of an error, for a condition message.
func siteSays(e *site.Error) string {
	if e.Message == "" {
		return ""
	}
	return ": " + e.Message
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
	var wait time.Duration
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
