// Package tenant is the one home of a SCIM tenant's rules: reading a ScimSettings with its
// IdP bearer tokens and its site token (trimmed the same way everywhere, one default key),
// which tenant owns a base path when two claim it, and which tenants a Secret concerns.
// The SCIM server and every reconciler go through it; no other package reads a tenant
// Secret.
package tenant

import (
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/site"
)

// DefaultKey is the Secret key a token reference without a key reads.
const DefaultKey = "token"

// Key is k, or DefaultKey when k is empty.
func Key(k string) string {
	if k == "" {
		return DefaultKey
	}
	return k
}

// Problem says why a tenant or one of its tokens cannot be used. The values are the
// ScimSettings condition reasons that report them.
type Problem string

const (
	// SettingsNotFound: the ScimSettings does not exist.
	SettingsNotFound Problem = "SettingsNotFound"
	// SecretNotFound: a referenced Secret does not exist.
	SecretNotFound Problem = "SecretNotFound"
	// SecretKeyMissing: a referenced Secret lacks the referenced key.
	SecretKeyMissing Problem = "SecretKeyMissing"
	// TokenEmpty: a referenced key holds only whitespace.
	TokenEmpty Problem = "TokenEmpty"
)

// Error is an expected reason a tenant cannot be used: a state to wait out (the object
// appears, the Secret is filled in), not a crash. Its message names objects and keys,
// never a token.
type Error struct {
	Problem Problem
	Message string
}

func (e *Error) Error() string { return e.Message }

// Gone reports that an object the tenant needs does not exist at all.
func (e *Error) Gone() bool { return e.Problem == SettingsNotFound || e.Problem == SecretNotFound }

// AsError returns err's *Error, if it is one.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// Token is a Secret value as a token: surrounding whitespace removed, because
// `kubectl create secret --from-file` keeps the file's trailing newline.
func Token(value []byte) string { return strings.TrimSpace(string(value)) }

// ReadToken reads one token from a Secret of namespace; what names the token in messages
// ("site token"). Expected problems are an *Error, anything else is a transient API error.
func ReadToken(ctx context.Context, r client.Reader, namespace, secretName, key, what string) (string, error) {
	key = Key(key)
	var secret corev1.Secret
	if err := r.Get(ctx, types.NamespacedName{Namespace: namespace, Name: secretName}, &secret); err != nil {
		if apierrors.IsNotFound(err) {
			return "", &Error{Problem: SecretNotFound, Message: fmt.Sprintf("%s: Secret %q not found", what, secretName)}
		}
		return "", fmt.Errorf("reading Secret %s/%s: %w", namespace, secretName, err)
	}
	value, ok := secret.Data[key]
	if !ok {
		return "", &Error{Problem: SecretKeyMissing, Message: fmt.Sprintf("%s: Secret %q has no key %q", what, secretName, key)}
	}
	token := Token(value)
	if token == "" {
		return "", &Error{Problem: TokenEmpty, Message: fmt.Sprintf("%s: key %q of Secret %q is empty", what, key, secretName)}
	}
	return token, nil
}

// Get reads a ScimSettings; a missing one is an *Error with SettingsNotFound.
func Get(ctx context.Context, r client.Reader, key types.NamespacedName) (*scimv1.ScimSettings, error) {
	s := &scimv1.ScimSettings{}
	if err := r.Get(ctx, key, s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &Error{Problem: SettingsNotFound,
				Message: fmt.Sprintf("ScimSettings %q not found in namespace %q", key.Name, key.Namespace)}
		}
		return nil, err
	}
	return s, nil
}

// SiteToken reads the tenant's site token.
func SiteToken(ctx context.Context, r client.Reader, s *scimv1.ScimSettings) (string, error) {
	ref := s.Spec.Site.TokenSecretRef
	return ReadToken(ctx, r, s.Namespace, ref.Name, ref.Key, "site token")
}

// BearerTokens reads the tokens an identity provider may present: the current key, which
// is required, and the optional nextKey of a rotation. next is non-nil when nextKey is set
// but unusable: the current key alone still authenticates.
func BearerTokens(ctx context.Context, r client.Reader, s *scimv1.ScimSettings) (tokens []string, next *Error, err error) {
	ref := s.Spec.BearerTokenSecretRef
	current, err := ReadToken(ctx, r, s.Namespace, ref.Name, ref.Key, "bearer token")
	if err != nil {
		return nil, nil, err
	}
	tokens = []string{current}
	if ref.NextKey == "" {
		return tokens, nil, nil
	}
	nt, err := ReadToken(ctx, r, s.Namespace, ref.Name, ref.NextKey, "next bearer token")
	if e, ok := AsError(err); ok {
		return tokens, e, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return append(tokens, nt), nil, nil
}

// SiteConfig is the site client configuration of a tenant with its site token.
func SiteConfig(s *scimv1.ScimSettings, token string) site.Config {
	cfg := site.Config{
		URL:               s.Spec.Site.URL,
		Token:             token,
		RequestsPerSecond: float64(s.Spec.Site.RequestsPerSecond),
		Burst:             int(s.Spec.Site.Burst),
	}
	if t := s.Spec.Site.Timeout; t != nil {
		cfg.Timeout = t.Duration
	}
	return cfg
}

// Name is the tenant's key in per-tenant maps (site clients, rate limits, metrics).
func Name(s *scimv1.ScimSettings) string { return s.Namespace + "/" + s.Name }

// Tenant is a ScimSettings with a client for its site.
type Tenant struct {
	Settings *scimv1.ScimSettings
	Site     *site.Client
}

// InvalidSiteConfig is the Problem of a site configuration the client refuses (a bad URL).
const InvalidSiteConfig Problem = "SiteConfigInvalid"

// Load reads a ScimSettings and its site token and returns the tenant with its site
// client from sites. On an *Error about the token or the site configuration the returned
// Tenant still carries the settings (for its deletion and history policies).
func Load(ctx context.Context, r client.Reader, sites *site.Clients, key types.NamespacedName) (*Tenant, error) {
	s, err := Get(ctx, r, key)
	if err != nil {
		return nil, err
	}
	t := &Tenant{Settings: s}
	token, err := SiteToken(ctx, r, s)
	if _, ok := AsError(err); ok {
		return t, err
	}
	if err != nil {
		return nil, err
	}
	sc, err := sites.For(Name(s), SiteConfig(s, token))
	if err != nil {
		return t, &Error{Problem: InvalidSiteConfig, Message: err.Error()}
	}
	t.Site = sc
	return t, nil
}
