package server

import (
	"net/http"
	"strings"

	"github.com/stackscim/stack-scim-operator/internal/scim/resource"
	"github.com/stackscim/stack-scim-operator/internal/scim/scimerr"
)

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
