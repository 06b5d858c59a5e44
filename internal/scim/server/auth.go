package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/tenant"
)

// invalidToken is the 401 detail for every token that is not accepted, whatever the
// reason: an unauthenticated caller learns nothing about the tenant's configuration.
const invalidToken = "The bearer token is not valid for this SCIM tenant."

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
	tokens, _, err := tenant.BearerTokens(ctx, s.opts.Tenants, settings)
	if err != nil {
		reason := "the bearer token cannot be read"
		if te, ok := tenant.AsError(err); ok {
			reason = te.Message
		} else {
			s.log.Error(err, "reading the bearer token", "tenant", tenant.Name(settings))
		}
		// The caller is not authenticated: it learns only that its token is not accepted.
		// The reason goes to status.lastAuthFailure and CredentialsValid, for the admin.
		return authResult{reason: reason, detail: invalidToken}
	}
	// Compare digests in constant time, checking every configured token, so neither the
	// token's length nor which key matched leaks through timing.
	p := sha256.Sum256([]byte(presented))
	match := 0
	for _, t := range tokens {
		d := sha256.Sum256([]byte(t))
		match |= subtle.ConstantTimeCompare(p[:], d[:])
	}
	if match != 1 {
		return authResult{reason: "token does not match", detail: invalidToken}
	}
	return authResult{ok: true}
}
