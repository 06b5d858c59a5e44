package audit

import (
	"encoding/json"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
)

// patchOp is one RFC 6902 operation.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// StatusPatch is a patch of a StackUser's status that sets some status fields and puts
// audit entries at the front of status.history. It sends only the new entries, not the
// whole history, and carries the resourceVersion it was computed from: a reconcile
// working from a stale copy gets a conflict instead of recording an entry twice.
type StatusPatch struct {
	// ops is the JSON patch that adds to a history that has entries.
	ops []patchOp
	// merge is the merge patch used when the history is empty: JSON patch cannot add
	// into a list, or a status, that is not there, and the copy at hand does not tell
	// whether the stored status is (its status.site may be what this process saw since).
	merge map[string]any
}

var _ client.Patch = (*StatusPatch)(nil)

// NewStatusPatch sets the status fields in set (nil values are left alone) and prepends
// entries (oldest first) to the history of base, the user as read, whose history trail
// describes, trimming it to limit.
func NewStatusPatch(base *scimv1.StackUser, trail Trail, limit int, set map[string]any, entries ...scimv1.AuditEntry) *StatusPatch {
	if limit <= 0 {
		limit = 20
	}
	keys := make([]string, 0, len(set))
	for k, v := range set {
		if v != nil {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	have := trail.Len()
	if have == 0 {
		status := make(map[string]any, len(set)+1)
		for _, k := range keys {
			status[k] = set[k]
		}
		if len(entries) > 0 {
			status["history"] = Prepend(nil, limit, entries...)
		}
		return &StatusPatch{merge: map[string]any{
			"metadata": map[string]any{"resourceVersion": base.ResourceVersion},
			"status":   status,
		}}
	}
	p := &StatusPatch{ops: []patchOp{{Op: "replace", Path: "/metadata/resourceVersion", Value: base.ResourceVersion}}}
	for _, k := range keys {
		p.ops = append(p.ops, patchOp{Op: "add", Path: "/status/" + k, Value: set[k]})
	}
	for i := range entries {
		entries[i] = sanitize(entries[i])
	}
	for _, e := range entries {
		p.ops = append(p.ops, patchOp{Op: "add", Path: "/status/history/0", Value: e})
	}
	newest := sizes(entries)
	slices.Reverse(newest)
	kept := keep(append(newest, trail.sizes...), limit)
	for i := have + len(entries) - 1; i >= kept; i-- {
		p.ops = append(p.ops, patchOp{Op: "remove", Path: fmt.Sprintf("/status/history/%d", i)})
	}
	return p
}

// Type is JSON patch, or merge patch for an empty history.
func (p *StatusPatch) Type() types.PatchType {
	if p.merge != nil {
		return types.MergePatchType
	}
	return types.JSONPatchType
}

// Data is the patch.
func (p *StatusPatch) Data(client.Object) ([]byte, error) {
	if p.merge != nil {
		return json.Marshal(p.merge)
	}
	return json.Marshal(p.ops)
}
