package audit

import (
	"encoding/json"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/api/equality"
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

// StatusPatch is a JSON patch of a StackUser's status that sets some status fields and
// puts audit entries at the front of status.history. It sends only the new entries, not
// the whole history, and carries the resourceVersion it was computed from: a reconcile
// working from a stale copy gets a conflict instead of recording an entry twice.
type StatusPatch struct{ ops []patchOp }

var _ client.Patch = (*StatusPatch)(nil)

// NewStatusPatch sets the status fields in set (nil values are left alone) and prepends
// entries (oldest first) to the history of base, the user as read, trimming it to limit.
func NewStatusPatch(base *scimv1.StackUser, limit int, set map[string]any, entries ...scimv1.AuditEntry) *StatusPatch {
	if limit <= 0 {
		limit = 20
	}
	p := &StatusPatch{ops: []patchOp{{Op: "replace", Path: "/metadata/resourceVersion", Value: base.ResourceVersion}}}
	keys := make([]string, 0, len(set))
	for k, v := range set {
		if v != nil {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	have := len(base.Status.History)
	if have == 0 {
		// JSON patch cannot add into a list (or an object) that is not there.
		fresh := make(map[string]any, len(set)+1)
		for _, k := range keys {
			fresh[k] = set[k]
		}
		if len(entries) > 0 {
			fresh["history"] = Prepend(nil, limit, entries...)
		}
		if equality.Semantic.DeepEqual(base.Status, scimv1.StackUserStatus{}) {
			p.ops = append(p.ops, patchOp{Op: "add", Path: "/status", Value: fresh})
			return p
		}
		for _, k := range append(keys, "history") {
			if v, ok := fresh[k]; ok {
				p.ops = append(p.ops, patchOp{Op: "add", Path: "/status/" + k, Value: v})
			}
		}
		return p
	}
	for _, k := range keys {
		p.ops = append(p.ops, patchOp{Op: "add", Path: "/status/" + k, Value: set[k]})
	}
	all := make([]scimv1.AuditEntry, 0, have+len(entries))
	for i := len(entries) - 1; i >= 0; i-- {
		entries[i] = sanitize(entries[i])
		all = append(all, entries[i])
	}
	for _, e := range entries {
		p.ops = append(p.ops, patchOp{Op: "add", Path: "/status/history/0", Value: e})
	}
	kept := keep(append(all, base.Status.History...), limit)
	for i := have + len(entries) - 1; i >= kept; i-- {
		p.ops = append(p.ops, patchOp{Op: "remove", Path: fmt.Sprintf("/status/history/%d", i)})
	}
	return p
}

// Type is JSON patch.
func (p *StatusPatch) Type() types.PatchType { return types.JSONPatchType }

// Data is the list of operations.
func (p *StatusPatch) Data(client.Object) ([]byte, error) { return json.Marshal(p.ops) }
