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

// StatusPatch is a JSON patch of a StackUser's status that sets some status fields and
// puts audit entries at the front of status.history without the object's resourceVersion.
// The SCIM server and the reconciler both prepend to the same history; prepends commute,
// so neither has to re-read and retry when the other wrote first (a retry storm during a
// bulk push). Only one writer owns each field it sets.
type StatusPatch struct{ ops []patchOp }

var _ client.Patch = (*StatusPatch)(nil)

// CanPatchHistory reports whether NewStatusPatch can be used: JSON patch operations need
// the history list (and so status) to exist. Callers fall back to an optimistically
// locked write for a user that has no history yet.
func CanPatchHistory(u *scimv1.StackUser) bool { return len(u.Status.History) > 0 }

// NewStatusPatch sets the status fields in set (nil values are left alone) and prepends
// entries (oldest first) to a history that had `have` elements when read, trimming it to
// limit. A concurrent prepend only makes the trim keep a few more old entries, which the
// next write trims.
func NewStatusPatch(have, limit int, set map[string]any, entries ...scimv1.AuditEntry) *StatusPatch {
	if limit <= 0 {
		limit = 20
	}
	p := &StatusPatch{}
	keys := make([]string, 0, len(set))
	for k, v := range set {
		if v != nil {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		p.ops = append(p.ops, patchOp{Op: "add", Path: "/status/" + k, Value: set[k]})
	}
	for _, e := range entries {
		p.ops = append(p.ops, patchOp{Op: "add", Path: "/status/history/0", Value: sanitize(e)})
	}
	for i := have + len(entries) - 1; i >= limit; i-- {
		p.ops = append(p.ops, patchOp{Op: "remove", Path: fmt.Sprintf("/status/history/%d", i)})
	}
	return p
}

// Type is JSON patch.
func (p *StatusPatch) Type() types.PatchType { return types.JSONPatchType }

// Data is the list of operations.
func (p *StatusPatch) Data(client.Object) ([]byte, error) { return json.Marshal(p.ops) }
