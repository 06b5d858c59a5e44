// Package scimtest holds the HTTP plumbing the SCIM test suites share: building a
// request the way an identity provider sends it, and reading a (possibly gzipped) answer.
package scimtest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// NewRequest builds a SCIM request with a bearer token. body may be nil, a string, raw
// bytes or a value to encode as JSON. headers are name/value pairs applied last; an empty
// value removes the header.
func NewRequest(method, url, token, userAgent string, body any, headers ...string) (*http.Request, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("User-Agent", userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/scim+json; charset=utf-8")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	return req, nil
}

// ReadBody reads an answer's body, gunzipping it when the server compressed it.
func ReadBody(h http.Header, body io.Reader) ([]byte, error) {
	data, err := io.ReadAll(body)
	if err != nil || h.Get("Content-Encoding") != "gzip" {
		return data, err
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}
