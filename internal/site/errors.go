package site

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// ErrCreateUnsupported means the site cannot create users (older versions, or creation
// switched off): accounts appear at the user's first SAML sign-in.
var ErrCreateUnsupported = errors.New("the site does not create users over SCIM; the account appears at first SAML sign-in")

// ErrDeleteUnsupported means the site does not delete users (deletion is off unless the
// vendor's support enables it).
var ErrDeleteUnsupported = errors.New("the site does not delete users over SCIM")

// Error is an HTTP error answered by the site, with its {"ErrorMessage"} text.
type Error struct {
	// Method and Path of the request (the path has no query and no secret).
	Method, Path string
	// StatusCode is the HTTP status.
	StatusCode int
	// Message is the site's ErrorMessage, or a short excerpt of the body.
	Message string
	// RetryAfter is the delay the site asked for (429 or 503), zero when none.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	return fmt.Sprintf("site %s %s: %d: %s", e.Method, e.Path, e.StatusCode, msg)
}

// TransportError is a request that got no HTTP answer (connection refused, timeout).
type TransportError struct {
	Method, Path string
	Err          error
}

func (e *TransportError) Error() string {
	return fmt.Sprintf("site %s %s: %v", e.Method, e.Path, e.Err)
}

func (e *TransportError) Unwrap() error { return e.Err }

// StatusCode is the HTTP status of a site error, 0 when it is not one.
func StatusCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.StatusCode
	}
	return 0
}

// IsNotFound reports a 404 from the site.
func IsNotFound(err error) bool { return StatusCode(err) == http.StatusNotFound }

// IsUnreachable reports an error that says nothing about the request itself: no answer,
// throttling or a server error. Such requests are worth retrying later.
func IsUnreachable(err error) bool {
	var te *TransportError
	if errors.As(err, &te) {
		return true
	}
	c := StatusCode(err)
	return c == http.StatusTooManyRequests || c >= 500
}

// IsUnauthorized reports that the site rejected the token.
func IsUnauthorized(err error) bool {
	c := StatusCode(err)
	return c == http.StatusUnauthorized || c == http.StatusForbidden
}

// RetryAfter is the delay the site asked for in err, zero when none.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}
