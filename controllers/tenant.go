package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/site"
)

// tenant is a ScimSettings together with a client for its site.
type tenant struct {
	settings *scimv1.ScimSettings
	site     *site.Client
}

// tenantError says why a tenant cannot be used, as a condition reason and message. It is
// a state to wait out (the object appears, the Secret is filled in), not a crash.
type tenantError struct {
	reason, message string
	// gone is set when the ScimSettings or the Secret does not exist at all.
	gone bool
}

func (e *tenantError) Error() string { return e.message }

func asTenantError(err error) (*tenantError, bool) {
	var te *tenantError
	ok := errors.As(err, &te)
	return te, ok
}

// loadTenant reads a ScimSettings and its site token and returns the tenant's site client.
// The token is only ever handed to the client: it is not logged or put in an error.
func loadTenant(ctx context.Context, c client.Reader, sites *site.Clients, namespace, name string) (*tenant, error) {
	settings := &scimv1.ScimSettings{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, settings); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &tenantError{reason: ReasonSettingsNotFound, gone: true,
				message: fmt.Sprintf("ScimSettings %q not found in namespace %q", name, namespace)}
		}
		return nil, err
	}
	ref := settings.Spec.Site.TokenSecretRef
	key := ref.Key
	if key == "" {
		key = "token"
	}
	secret := &corev1.Secret{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: ref.Name}, secret); err != nil {
		if apierrors.IsNotFound(err) {
			return &tenant{settings: settings}, &tenantError{reason: ReasonSiteTokenNotFound, gone: true,
				message: fmt.Sprintf("site token Secret %q not found", ref.Name)}
		}
		return nil, err
	}
	token := string(secret.Data[key])
	if token == "" {
		return &tenant{settings: settings}, &tenantError{reason: ReasonSiteTokenNotFound,
			message: fmt.Sprintf("site token Secret %q has no key %q or it is empty", ref.Name, key)}
	}
	cfg := site.Config{
		URL:               settings.Spec.Site.URL,
		Token:             token,
		RequestsPerSecond: float64(settings.Spec.Site.RequestsPerSecond),
		Burst:             int(settings.Spec.Site.Burst),
	}
	if t := settings.Spec.Site.Timeout; t != nil {
		cfg.Timeout = t.Duration
	}
	sc, err := sites.For(namespace+"/"+name, cfg)
	if err != nil {
		return &tenant{settings: settings}, &tenantError{reason: ReasonSiteConfigInvalid, message: err.Error()}
	}
	return &tenant{settings: settings, site: sc}, nil
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
