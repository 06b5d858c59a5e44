package tenant

import (
	"context"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Reader reads tenants for the SCIM server and the reconcilers. ScimSettings (and
// anything else) come from the manager's cache; Secrets are never cached whole. The cache
// holds only Secret metadata (a metadata-only informer, which the Secret watches share),
// and Reader keeps the data of the Secrets tenants actually name, read live once per
// resourceVersion. So the manager holds no other Secret's data, and a rotation takes
// effect as soon as the watch delivers the new resourceVersion.
type Reader struct {
	// Cached reads through the manager's cache.
	Cached client.Reader
	// Live reads the API server directly.
	Live client.Reader

	mu      sync.Mutex
	secrets map[types.NamespacedName]*corev1.Secret
}

// NewReader returns a Reader over a cache-backed reader and a live one.
func NewReader(cached, live client.Reader) *Reader {
	return &Reader{Cached: cached, Live: live, secrets: map[types.NamespacedName]*corev1.Secret{}}
}

var _ client.Reader = (*Reader)(nil)

// SecretMetadata is the object the Secret metadata informer and watches use.
func SecretMetadata() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	return m
}

// Get reads obj; a Secret as described on Reader.
func (r *Reader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	secret, ok := obj.(*corev1.Secret)
	if !ok {
		return r.Cached.Get(ctx, key, obj, opts...)
	}
	meta := SecretMetadata()
	if err := r.Cached.Get(ctx, key, meta); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(key)
		}
		return err
	}
	r.mu.Lock()
	known := r.secrets[key]
	r.mu.Unlock()
	if known != nil && known.ResourceVersion == meta.ResourceVersion {
		known.DeepCopyInto(secret)
		return nil
	}
	fresh := &corev1.Secret{}
	if err := r.Live.Get(ctx, key, fresh); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(key)
		}
		return err
	}
	// Only what the tenant rules read is kept.
	kept := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: fresh.Namespace, Name: fresh.Name,
		ResourceVersion: fresh.ResourceVersion, UID: fresh.UID}, Data: fresh.Data}
	r.mu.Lock()
	if r.secrets == nil {
		r.secrets = map[types.NamespacedName]*corev1.Secret{}
	}
	r.secrets[key] = kept
	r.mu.Unlock()
	kept.DeepCopyInto(secret)
	return nil
}

// List lists through the cache (Secrets are never listed).
func (r *Reader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	return r.Cached.List(ctx, list, opts...)
}

func (r *Reader) forget(key types.NamespacedName) {
	r.mu.Lock()
	delete(r.secrets, key)
	r.mu.Unlock()
}
