package server

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/stackscim/stack-scim-operator/internal/scim/scimerr"
)

// ContentType is the media type of every response body.
const ContentType = "application/scim+json; charset=utf-8"

// acceptsGzip reports whether the client accepts gzip (and did not refuse it with q=0).
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(name), "gzip") {
			continue
		}
		if q, ok := strings.CutPrefix(strings.ReplaceAll(params, " ", ""), "q="); ok {
			if f, err := strconv.ParseFloat(q, 64); err == nil && f == 0 {
				return false
			}
		}
		return true
	}
	return false
}

// minGzipBytes is the smallest body worth compressing: below it gzip saves a few hundred
// bytes and costs more CPU than the whole request (a single user is about 700 bytes).
const minGzipBytes = 1024

// gzipWriters are reused: each one holds about a megabyte of compressor state.
var gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(io.Discard) }}

// writeJSON writes v with the given status, gzip-compressed when the client accepts it
// and the body is large enough to gain from it.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		_ = json.NewEncoder(&buf).Encode(errorBody(&scimerr.Error{Status: status, Detail: "the response could not be encoded"}))
	}
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Add("Vary", "Accept-Encoding")
	if buf.Len() >= minGzipBytes && acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		h.Del("Content-Length")
		w.WriteHeader(status)
		gz := gzipWriters.Get().(*gzip.Writer)
		gz.Reset(w)
		_, _ = gz.Write(buf.Bytes())
		_ = gz.Close()
		gz.Reset(io.Discard) // do not keep the response writer alive in the pool
		gzipWriters.Put(gz)
		return
	}
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func errorBody(e *scimerr.Error) map[string]any {
	b := map[string]any{
		"schemas": []any{scimerr.SchemaError},
		"status":  strconv.Itoa(e.Status),
		"detail":  e.Detail,
	}
	if e.ScimType != "" {
		b["scimType"] = e.ScimType
	}
	return b
}

// writeError writes a SCIM error body; status is a string, as RFC 7644 requires.
func writeError(w http.ResponseWriter, r *http.Request, e *scimerr.Error) {
	if rw, ok := w.(*responseWriter); ok {
		rw.detail = e.Detail
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	writeJSON(w, r, e.Status, errorBody(e))
}

// toSCIMError turns any error into a SCIM error; unknown errors are 500s without detail.
func toSCIMError(err error) *scimerr.Error {
	if se := scimerr.As(err); se != nil {
		return se
	}
	return &scimerr.Error{Status: http.StatusInternalServerError, Detail: "internal error; the request was logged"}
}

// readBody reads a JSON object body, bounded by limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) (map[string]any, error) {
	if r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge(limit)
		}
		return nil, scimerr.BadRequest(scimerr.InvalidSyntax, "the request body could not be read: %v", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, scimerr.BadRequest(scimerr.InvalidSyntax, "the request body is empty; a JSON object is required")
	}
	// encoding/json silently replaces invalid UTF-8, and lone surrogate escapes such as
	// "\ud800", with U+FFFD: the value stored would not be the one sent.
	if !utf8.Valid(data) {
		return nil, scimerr.BadRequest(scimerr.InvalidSyntax, "the request body is not valid UTF-8")
	}
	if loneSurrogate(data) {
		return nil, scimerr.BadRequest(scimerr.InvalidSyntax, "the request body has a \\u escape of a lone UTF-16 surrogate, which is not a character")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, scimerr.BadRequest(scimerr.InvalidSyntax, "the request body is not valid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, scimerr.BadRequest(scimerr.InvalidSyntax, "the request body has data after the JSON object")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, scimerr.BadRequest(scimerr.InvalidSyntax, "the request body must be a JSON object")
	}
	return m, nil
}

// loneSurrogate reports whether a JSON text escapes a UTF-16 surrogate (\uD800-\uDFFF)
// that is not part of a high-low pair.
func loneSurrogate(data []byte) bool {
	hex4 := func(i int) (rune, bool) {
		if i+6 > len(data) || data[i] != '\\' || data[i+1] != 'u' {
			return 0, false
		}
		n, err := strconv.ParseUint(string(data[i+2:i+6]), 16, 16)
		return rune(n), err == nil
	}
	for i := 0; i < len(data); i++ {
		if data[i] != '\\' {
			continue
		}
		r, ok := hex4(i)
		if !ok {
			i++ // skip the escaped character: an escaped backslash before "u" is no escape
			continue
		}
		switch {
		case r >= 0xD800 && r < 0xDC00:
			lo, ok := hex4(i + 6)
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return true
			}
			i += 11
		case r >= 0xDC00 && r <= 0xDFFF:
			return true
		default:
			i += 5
		}
	}
	return false
}

func tooLarge(limit int64) error {
	return scimerr.New(http.StatusRequestEntityTooLarge, "", "the request body is larger than %d bytes", limit)
}

// responseWriter records the status for logs and metrics.
type responseWriter struct {
	http.ResponseWriter
	status int
	detail string
}

func (w *responseWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}
