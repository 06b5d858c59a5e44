// Package scimerr is the SCIM error (RFC 7644 section 3.12) shared by the SCIM packages,
// so that the filter, PATCH and mapping code can say which status and scimType a bad
// request deserves without knowing about HTTP.
package scimerr

import (
	"errors"
	"fmt"
	"net/http"
)

// SchemaError is the schema URN of a SCIM error response.
const SchemaError = "urn:ietf:params:scim:api:messages:2.0:Error"

// scimType values of RFC 7644 section 3.12.
const (
	InvalidFilter = "invalidFilter"
	TooMany       = "tooMany"
	Uniqueness    = "uniqueness"
	Mutability    = "mutability"
	InvalidSyntax = "invalidSyntax"
	InvalidPath   = "invalidPath"
	NoTarget      = "noTarget"
	InvalidValue  = "invalidValue"
	InvalidVers   = "invalidVers"
	Sensitive     = "sensitive"
)

// Error is a SCIM error: an HTTP status, an optional scimType and a detail a human (the
// Okta or Entra admin reading a task list) can act on.
type Error struct {
	Status   int
	ScimType string
	Detail   string
	// RetryAfter, in seconds, is sent as the Retry-After header when positive.
	RetryAfter int
}

// WithRetryAfter sets the seconds a client should wait before retrying.
func (e *Error) WithRetryAfter(seconds int) *Error {
	e.RetryAfter = seconds
	return e
}

func (e *Error) Error() string {
	if e.ScimType != "" {
		return fmt.Sprintf("%d %s: %s", e.Status, e.ScimType, e.Detail)
	}
	return fmt.Sprintf("%d: %s", e.Status, e.Detail)
}

// New returns an Error with a formatted detail.
func New(status int, scimType, format string, args ...any) *Error {
	return &Error{Status: status, ScimType: scimType, Detail: fmt.Sprintf(format, args...)}
}

// BadRequest returns a 400 Error with a scimType.
func BadRequest(scimType, format string, args ...any) *Error {
	return New(http.StatusBadRequest, scimType, format, args...)
}

// As returns err as an *Error, or nil when it is not one.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}
