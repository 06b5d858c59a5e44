package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
)

// authResult says why a request was or was not authenticated; reason never holds a token.
type authResult struct {
	ok     bool
	reason string // for status.lastAuthFailure and logs
	detail string // for the client
}

// presentedToken takes the token from the Authorization header, with or without the
// "Bearer " prefix (Okta's "Header Auth" sends the bare token).
func presentedToken(r *http.Request) string {
	h := strings.TrimSpace(r.Header.Get("Authorization"))
	if len(h) >= 7 && strings.EqualFold(h[:7], "bearer ") {
		h = strings.TrimSpace(h[7:])
	}
	return h
}

// authenticate checks the request's token against the tenant's Secret, read through the
// manager's cache so a rotated token takes effect as soon as the watch delivers it.
func (s *Server) authenticate(ctx context.Context, settings *scimv1.ScimSettings, r *http.Request) authResult {
	if len(r.Header.Values("Authorization")) > 1 {
		// A proxy and a client each adding one: which is meant is a guess, so refuse.
		return authResult{reason: "several Authorization headers", detail: "Send exactly one Authorization header with the tenant's token."}
	}
	presented := presentedToken(r)
	if presented == "" {
		return authResult{reason: "no bearer token", detail: "Authentication is required: send the tenant's token as \"Authorization: Bearer <token>\"."}
	}
	ref := settings.Spec.BearerTokenSecretRef
	var secret corev1.Secret
	if err := s.opts.Client.Get(ctx, client.ObjectKey{Namespace: settings.Namespace, Name: ref.Name}, &secret); err != nil {
		reason := fmt.Sprintf("bearer token Secret %s/%s cannot be read", settings.Namespace, ref.Name)
		if apierrors.IsNotFound(err) {
			reason = fmt.Sprintf("bearer token Secret %s/%s does not exist", settings.Namespace, ref.Name)
		} else {
			s.log.Error(err, "reading bearer token Secret", "secret", settings.Namespace+"/"+ref.Name)
		}
		return authResult{reason: reason, detail: "This SCIM tenant has no usable bearer token configured (" + reason + "); ask the cluster administrator."}
	}
	key := ref.Key
	if key == "" {
		key = "token"
	}
	var tokens [][]byte
	for _, k := range []string{key, ref.NextKey} {
		if k == "" {
			continue
		}
		if t := strings.TrimSpace(string(secret.Data[k])); t != "" {
			tokens = append(tokens, []byte(t))
		}
	}
	if len(tokens) == 0 {
		reason := fmt.Sprintf("bearer token Secret %s/%s has no non-empty key %q", settings.Namespace, ref.Name, key)
		return authResult{reason: reason, detail: "This SCIM tenant has no usable bearer token configured (" + reason + "); ask the cluster administrator."}
	}
	// Compare digests in constant time, checking every configured token, so neither the
	// token's length nor which key matched leaks through timing.
	p := sha256.Sum256([]byte(presented))
	match := 0
	for _, t := range tokens {
		d := sha256.Sum256(t)
		match |= subtle.ConstantTimeCompare(p[:], d[:])
	}
	if match != 1 {
		return authResult{reason: "token does not match", detail: "The bearer token does not match this SCIM tenant's token."}
	}
	return authResult{ok: true}
}
