package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/index"
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
	err := index.EachUser(ctx, reader, s.Namespace, s.Name, func(u *scimv1.StackUser) {
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
	return nil
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
