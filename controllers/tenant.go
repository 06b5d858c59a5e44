package controllers

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/site"
	scimtenant "github.com/stackscim/stack-scim-operator/internal/tenant"
)

// tenant is the phases' view of a tenant: its ScimSettings and its site client. Loading
// it is internal/tenant's job.
type tenant struct {
	settings *scimv1.ScimSettings
	site     *site.Client
}

// tenantError says why a tenant cannot be used, as a StackUser condition reason and
// message. It is a state to wait out (the object appears, the Secret is filled in).
type tenantError struct {
	reason  string
	message string
	// gone is set when the ScimSettings or the Secret does not exist at all.
	gone bool
}

func (e *tenantError) Error() string { return e.message }

// loadTenant reads a ScimSettings and its site token through internal/tenant and maps an
// unusable tenant to a StackUser reason. The returned tenant may carry the settings even
// with an error, for the deletion and history policies.
func loadTenant(ctx context.Context, c client.Reader, sites *site.Clients, namespace, name string) (*tenant, *tenantError, error) {
	t, err := scimtenant.Load(ctx, c, sites, types.NamespacedName{Namespace: namespace, Name: name})
	var view *tenant
	if t != nil {
		view = &tenant{settings: t.Settings, site: t.Site}
	}
	te, ok := scimtenant.AsError(err)
	if !ok {
		return view, nil, err
	}
	reason := ReasonSiteTokenNotFound
	switch te.Problem {
	case scimtenant.SettingsNotFound:
		reason = ReasonSettingsNotFound
	case scimtenant.InvalidSiteConfig:
		reason = ReasonSiteConfigInvalid
	}
	return view, &tenantError{reason: reason, message: te.Message, gone: te.Gone()}, nil
}

// createUsers reports whether the tenant lets the operator create site users.
func createUsers(s *scimv1.ScimSettings) bool {
	return s.Spec.Site.CreateUsers == nil || *s.Spec.Site.CreateUsers
}

// siteErrorReason maps a site error to a condition reason.
func siteErrorReason(err error) string {
	switch {
	case site.IsUnauthorized(err):
		return ReasonSiteUnauthorized
	case site.IsUnreachable(err):
		return ReasonSiteUnreachable
	default:
		return ReasonSiteRequestFailed
	}
}

// retryFloor is the least delay before retrying after err (the site's Retry-After).
func retryFloor(err error) time.Duration { return site.RetryAfter(err) }

// defaultTenantReader is tenants, or a new internal/tenant.Reader on mgr's cache: the
// Secret watches are metadata-only, so Secret data must be read the way the Reader does,
// never through a second, full Secret informer that could lag behind the watch.
func defaultTenantReader(tenants client.Reader, mgr ctrl.Manager) client.Reader {
	if tenants != nil {
		return tenants
	}
	return scimtenant.NewReader(mgr.GetCache(), mgr.GetAPIReader())
}

// tenantReader is the reader for tenant loading: tenants when set, else c.
func tenantReader(tenants, c client.Reader) client.Reader {
	if tenants != nil {
		return tenants
	}
	return c
}

// secretTenants maps a Secret to the tenants that refer to it for use.
func secretTenants(ctx context.Context, c client.Reader, o client.Object, use scimtenant.Use) []reconcile.Request {
	keys, err := scimtenant.UsingSecret(ctx, c, client.ObjectKeyFromObject(o), use)
	if err != nil {
		logf.FromContext(ctx).Error(err, "mapping a Secret to its tenants")
		return nil
	}
	out := make([]reconcile.Request, 0, len(keys))
	for _, k := range keys {
		out = append(out, reconcile.Request{NamespacedName: k})
	}
	return out
}
