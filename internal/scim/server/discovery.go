package server

import (
	"net/http"
	"strings"

	"github.com/stackscim/stack-scim-operator/internal/scim/resource"
	"github.com/stackscim/stack-scim-operator/internal/scim/scimerr"
)

// groups answers the Groups endpoints: groups are not supported, so lists are empty
// (Okta's "Test API Credentials" needs a 200 ListResponse) and every group is unknown.
func (s *Server) groups(q *request) {
	switch m := q.r.Method; {
	case len(q.rest) == 0 && m == http.MethodGet:
		p, err := s.parseListParams(q)
		if err != nil {
			writeError(q.w, q.r, toSCIMError(err))
			return
		}
		writeJSON(q.w, q.r, http.StatusOK, listResponse(0, p.startIndex, nil))
	case len(q.rest) == 0 && m == http.MethodPost:
		writeError(q.w, q.r, scimerr.New(http.StatusNotImplemented, "", "groups are not supported by this SCIM server; provision users only"))
	case len(q.rest) == 0:
		q.w.Header().Set("Allow", "GET, POST")
		writeError(q.w, q.r, scimerr.New(http.StatusMethodNotAllowed, "", "%s is not supported on /Groups", m))
	case m == http.MethodGet || m == http.MethodPut || m == http.MethodPatch || m == http.MethodDelete:
		writeError(q.w, q.r, scimerr.New(http.StatusNotFound, "", "no group with id %q: groups are not supported by this SCIM server", truncate(strings.Join(q.rest, "/"), 256)))
	default:
		q.w.Header().Set("Allow", "GET, PUT, PATCH, DELETE")
		writeError(q.w, q.r, scimerr.New(http.StatusMethodNotAllowed, "", "%s is not supported on /Groups/{id}", m))
	}
}

func (s *Server) discovery(q *request) {
	var docs []map[string]any
	switch q.resource {
	case "ServiceProviderConfig":
		if len(q.rest) > 0 {
			writeError(q.w, q.r, scimerr.New(http.StatusNotFound, "", "no such resource"))
			return
		}
		writeJSON(q.w, q.r, http.StatusOK, resource.ServiceProviderConfig(q.baseURL, s.opts.MaxCount, s.opts.MaxBodyBytes))
		return
	case "ResourceTypes":
		docs = resource.ResourceTypes(q.baseURL)
	case "Schemas":
		docs = resource.Schemas(q.baseURL)
	}
	if len(q.rest) == 0 {
		list := make([]any, len(docs))
		for i, d := range docs {
			list[i] = d
		}
		writeJSON(q.w, q.r, http.StatusOK, listResponse(len(list), 1, list))
		return
	}
	id := strings.Join(q.rest, "/")
	for _, d := range docs {
		if strings.EqualFold(d["id"].(string), id) {
			writeJSON(q.w, q.r, http.StatusOK, d)
			return
		}
	}
	writeError(q.w, q.r, scimerr.New(http.StatusNotFound, "", "no %s with id %q", strings.TrimSuffix(q.resource, "s"), truncate(id, 256)))
}
