package audit

import (
	"encoding/json"
	"slices"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/clip"
)

// AnnotationPendingAudit holds, as a JSON list newest first, the audit entries of SCIM
// requests that status.history does not show yet. The SCIM server writes it in the same
// write as the change it records, so a SCIM request costs one API write and its entry
// cannot be lost; the reconciler moves the entries into status.history with the status
// write it makes anyway.
const AnnotationPendingAudit = "scim.stackscim.io/pending-audit"

// maxPendingBytes bounds the annotation (the API server allows 256 KiB of annotations in
// all); entries beyond it are the oldest and would be trimmed from the history first.
const maxPendingBytes = 128 << 10

// Pending returns the entries of the pending annotation, newest first; nil when there
// are none or the annotation is not ours to read.
func Pending(u *scimv1.StackUser) []scimv1.AuditEntry {
	raw := u.Annotations[AnnotationPendingAudit]
	if raw == "" {
		return nil
	}
	var out []scimv1.AuditEntry
	if json.Unmarshal([]byte(raw), &out) != nil {
		return nil
	}
	return out
}

// Unrecorded returns the pending entries the history (as trail tells it) does not hold
// yet, newest first.
func Unrecorded(u *scimv1.StackUser, trail Trail, limit int) []scimv1.AuditEntry {
	var out []scimv1.AuditEntry
	for _, e := range Pending(u) {
		if !trail.recorded(limit, e) {
			out = append(out, e)
		}
	}
	return out
}

// AddPending puts e in front of the user's unrecorded entries in the pending annotation,
// at most limit of them and maxPendingBytes in all.
func AddPending(u *scimv1.StackUser, limit int, e scimv1.AuditEntry) {
	if limit <= 0 {
		limit = 20
	}
	// A cached copy carries no history, but the cache kept only unrecorded entries.
	entries := append([]scimv1.AuditEntry{sanitize(e)}, Unrecorded(u, TrailOf(u), limit)...)
	entries = entries[:min(len(entries), limit)]
	raw, _ := json.Marshal(entries)
	for len(raw) > maxPendingBytes && len(entries) > 1 {
		entries = entries[:len(entries)-1]
		raw, _ = json.Marshal(entries)
	}
	if len(raw) > maxPendingBytes {
		// One entry alone over the budget: 64 changes of two 1 KiB values each.
		short := entries[0]
		short.Changes = slices.Clone(short.Changes)
		for i := range short.Changes {
			short.Changes[i].Old, short.Changes[i].New = clipValue(short.Changes[i].Old, 256), clipValue(short.Changes[i].New, 256)
		}
		raw, _ = json.Marshal([]scimv1.AuditEntry{short})
	}
	if u.Annotations == nil {
		u.Annotations = map[string]string{}
	}
	u.Annotations[AnnotationPendingAudit] = string(raw)
}

func clipValue(s string, n int) string { return clip.String(s, n) }
