package filter

import (
	"strings"
)

// GetCI looks a key up case-insensitively, as SCIM attribute names are. An exact match
// wins; otherwise the first match in sorted key order, so the result is deterministic
// even when a client sent the same attribute twice with different cases.
func GetCI(m map[string]any, key string) (any, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	k, ok := KeyCI(m, key)
	if !ok {
		return nil, false
	}
	return m[k], true
}

// KeyCI returns the key of m that equals key case-insensitively.
func KeyCI(m map[string]any, key string) (string, bool) {
	if _, ok := m[key]; ok {
		return key, true
	}
	found, ok := "", false
	for k := range m {
		if strings.EqualFold(k, key) && (!ok || k < found) {
			found, ok = k, true
		}
	}
	return found, ok
}
