// Package cachetrim shrinks objects before they enter the manager's informer cache. At
// 100,000 StackUsers the cache is most of the manager's memory, and most of each cached
// object is metadata the operator never reads: the field-by-field ownership in
// managedFields, kubectl's last-applied-configuration copy of the object, and the SCIM
// requests' audit entries once the history holds them.
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

// lastApplied is kubectl's client-side apply annotation: a full copy of the object.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// Transform is a cache transform (cache.Options.DefaultTransform) that keeps each
// managedFields entry's manager, operation, subresource and time, and whether it owns
// spec fields, and drops the rest along with last-applied-configuration.
func Transform() toolscache.TransformFunc {
	return func(in any) (any, error) {
		obj, ok := in.(metav1.Object)
		if !ok {
			return in, nil
		}
		if mf := obj.GetManagedFields(); len(mf) > 0 {
			trimmed := make([]metav1.ManagedFieldsEntry, len(mf))
			for i, e := range mf {
				owns := e.FieldsV1 != nil && bytes.Contains(e.FieldsV1.GetRawBytes(), []byte(`"f:spec"`))
				e.FieldsV1 = nil
				if owns {
					e.FieldsV1 = specMarker
				}
				trimmed[i] = e
			}
			obj.SetManagedFields(trimmed)
		}
		if u, ok := in.(*scimv1.StackUser); ok {
			// Once the history holds a SCIM request's entry, its copy in the annotation is
			// dead weight; the SCIM server's next write drops it on the server too.
			audit.DropRecorded(u)
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
		return obj, nil
	}
}
