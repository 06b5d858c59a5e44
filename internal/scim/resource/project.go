package resource

import (
	"strings"

	"github.com/stackscim/stack-scim-operator/internal/scim/filter"
)

// attrRef is a parsed `attributes` / `excludedAttributes` entry.
type attrRef struct {
	urn, attr, sub string
}

func parseAttrRef(s string, exts []string) attrRef {
	s = strings.TrimSpace(s)
	var r attrRef
	if strings.HasPrefix(strings.ToLower(s), "urn:") {
		for _, e := range exts {
			if strings.EqualFold(s, e) {
				r.urn = e
				return r
			}
		}
		i := strings.LastIndexByte(s, ':')
		r.urn, s = s[:i], s[i+1:]
		if strings.EqualFold(r.urn, SchemaUser) {
			r.urn = ""
		}
	}
	r.attr, r.sub, _ = strings.Cut(s, ".")
	return r
}

func extKeys(doc map[string]any) []string {
	var out []string
	for k := range doc {
		if strings.HasPrefix(strings.ToLower(k), "urn:") {
			out = append(out, k)
		}
	}
	return out
}

// alwaysReturned are attributes `attributes` and `excludedAttributes` never remove.
var alwaysReturned = map[string]bool{"id": true, "schemas": true}

// Project applies the `attributes` and `excludedAttributes` query parameters (RFC 7644
// section 3.4.2.5) to a document. id and schemas are always returned.
func Project(doc map[string]any, attributes, excluded []string) map[string]any {
	exts := extKeys(doc)
	if len(attributes) > 0 {
		out := map[string]any{}
		for k := range alwaysReturned {
			if v, ok := doc[k]; ok {
				out[k] = v
			}
		}
		for _, a := range attributes {
			r := parseAttrRef(a, exts)
			src, dst := doc, out
			if r.urn != "" {
				ek, ok := filter.KeyCI(doc, r.urn)
				if !ok {
					continue
				}
				if r.attr == "" {
					out[ek] = doc[ek]
					continue
				}
				m, ok := doc[ek].(map[string]any)
				if !ok {
					continue
				}
				src = m
				d, ok := out[ek].(map[string]any)
				if !ok {
					d = map[string]any{}
					out[ek] = d
				}
				dst = d
			}
			k, ok := filter.KeyCI(src, r.attr)
			if !ok {
				continue
			}
			if r.sub == "" {
				dst[k] = src[k]
				continue
			}
			dst[k] = mergeSub(dst[k], src[k], r.sub)
		}
		return out
	}
	if len(excluded) == 0 {
		return doc
	}
	out := make(map[string]any, len(doc))
	for k, v := range doc {
		out[k] = v
	}
	for _, a := range excluded {
		r := parseAttrRef(a, exts)
		target := out
		if r.urn != "" {
			ek, ok := filter.KeyCI(out, r.urn)
			if !ok {
				continue
			}
			if r.attr == "" {
				delete(out, ek)
				continue
			}
			m, ok := out[ek].(map[string]any)
			if !ok {
				continue
			}
			cp := make(map[string]any, len(m))
			for mk, mv := range m {
				cp[mk] = mv
			}
			out[ek] = cp
			target = cp
		}
		k, ok := filter.KeyCI(target, r.attr)
		if !ok || (r.urn == "" && alwaysReturned[strings.ToLower(k)]) {
			continue
		}
		if r.sub == "" {
			delete(target, k)
			continue
		}
		target[k] = withoutSub(target[k], r.sub)
	}
	return out
}

// mergeSub copies one sub-attribute of src (a complex or multi-valued attribute) into dst.
func mergeSub(dst, src any, sub string) any {
	switch s := src.(type) {
	case map[string]any:
		d, _ := dst.(map[string]any)
		if d == nil {
			d = map[string]any{}
		}
		if k, ok := filter.KeyCI(s, sub); ok {
			d[k] = s[k]
		}
		return d
	case []any:
		d, _ := dst.([]any)
		if len(d) != len(s) {
			d = make([]any, len(s))
		}
		for i, el := range s {
			d[i] = mergeSub(d[i], el, sub)
		}
		return d
	}
	return dst
}

func withoutSub(v any, sub string) any {
	switch x := v.(type) {
	case map[string]any:
		cp := make(map[string]any, len(x))
		for k, v := range x {
			if !strings.EqualFold(k, sub) {
				cp[k] = v
			}
		}
		return cp
	case []any:
		out := make([]any, len(x))
		for i, el := range x {
			out[i] = withoutSub(el, sub)
		}
		return out
	}
	return v
}
