// Package cachetrim shrinks objects before they enter the manager's informer cache. At
// 100,000 StackUsers the cache is most of the manager's memory, and most of each cached
// object is metadata the operator never reads: the field-by-field ownership in
// managedFields, kubectl's last-applied-configuration copy of the object, the SCIM
// requests' audit entries once the history holds them, and the history itself, of which
// the audit writers need only the shape (audit.Trails).
package cachetrim

import (
	"bytes"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/audit"
)

// specMarker is what remains of a managedFields entry that owns spec fields: the
// reconciler only asks which manager last wrote the spec, and when. Every cached entry
// shares it (cached objects are read-only; copies get their own).
var specMarker = metav1.NewFieldsV1(`{"f:spec":{}}`)

// specWriters keeps the two entries the reconciler's attribution reads (who last wrote
// the spec, and who of the others besides the SCIM server): the newest entry owning spec
// fields and the newest such entry of another manager, each with its manager, operation
// and time, and its fields reduced to specMarker.
func specWriters(mf []metav1.ManagedFieldsEntry) []metav1.ManagedFieldsEntry {
	newest, newestOther := -1, -1
	for i, e := range mf {
		if e.Subresource != "" || e.FieldsV1 == nil || !bytes.Contains(e.FieldsV1.GetRawBytes(), []byte(`"f:spec"`)) {
			continue
		}
		if newest < 0 || atLeastAsNew(e, mf[newest]) {
			newest = i
		}
		if e.Manager != audit.SCIMFieldManager && (newestOther < 0 || atLeastAsNew(e, mf[newestOther])) {
			newestOther = i
		}
	}
	var out []metav1.ManagedFieldsEntry
	for i, e := range mf {
		if i == newest || i == newestOther {
			e.FieldsV1 = specMarker
			out = append(out, e)
		}
	}
	return out
}

func atLeastAsNew(e, cur metav1.ManagedFieldsEntry) bool {
	return e.Time == nil || cur.Time == nil || !e.Time.Before(cur.Time)
}

// lastApplied is kubectl's client-side apply annotation: a full copy of the object.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// Transform is a cache transform (cache.Options.DefaultTransform) that keeps of
// managedFields only the newest writers of the spec (specWriters), and drops
// last-applied-configuration. A StackUser's
// status.history goes to trails, which keeps only what the audit writers need of it.
// Repeated short strings (condition messages, keys, the tenant) share one copy.
func Transform(trails *audit.Trails) toolscache.TransformFunc {
	strs := &interner{m: map[string]string{}}
	return func(in any) (any, error) {
		obj, ok := in.(metav1.Object)
		if !ok {
			return in, nil
		}
		if mf := obj.GetManagedFields(); len(mf) > 0 {
			obj.SetManagedFields(specWriters(mf))
		}
		if u, ok := in.(*scimv1.StackUser); ok {
			// Once the history holds a SCIM request's entry, its copy in the annotation is
			// dead weight; the SCIM server's next write drops it on the server too.
			trails.Strip(u)
			strs.user(u)
		}
		if a := obj.GetAnnotations(); a[lastApplied] != "" {
			kept := make(map[string]string, len(a)-1)
			for k, v := range a {
				if k != lastApplied {
					kept[k] = v
				}
			}
			obj.SetAnnotations(kept)
		}
		strs.meta(obj)
		return obj, nil
	}
}
