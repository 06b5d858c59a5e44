package server

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/audit"
)

// statusRecorder keeps the latest request and auth failure per tenant in memory and
// writes them to ScimSettings status in the background, at most once per interval per
// tenant, so that a busy IdP never turns into a write per request and no request waits
// for a status write.
type statusRecorder struct {
	client   client.Client
	log      logr.Logger
	interval time.Duration

	mu      sync.Mutex
	pending map[types.NamespacedName]*tenantStatus
}

type tenantStatus struct {
	lastRequest, lastAuthFailure *scimv1.RequestRecord
	dirty                        bool
	lastWrite                    time.Time
}

func newStatusRecorder(c client.Client, log logr.Logger, interval time.Duration) *statusRecorder {
	return &statusRecorder{client: c, log: log, interval: interval, pending: map[types.NamespacedName]*tenantStatus{}}
}

func (s *statusRecorder) entry(key types.NamespacedName) *tenantStatus {
	e, ok := s.pending[key]
	if !ok {
		e = &tenantStatus{}
		s.pending[key] = e
	}
	return e
}

// Request notes an authenticated request.
func (s *statusRecorder) Request(key types.NamespacedName, rec scimv1.RequestRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entry(key)
	e.lastRequest = &rec
	e.dirty = true
}

// AuthFailure notes a request rejected for its credentials.
func (s *statusRecorder) AuthFailure(key types.NamespacedName, rec scimv1.RequestRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entry(key)
	e.lastAuthFailure = &rec
	e.dirty = true
}

// Run flushes due entries until ctx ends.
func (s *statusRecorder) Run(ctx context.Context) {
	tick := time.NewTicker(min(s.interval/5, time.Second))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.flush(ctx, false)
		}
	}
}

type statusWrite struct {
	key  types.NamespacedName
	body []byte
}

func (s *statusRecorder) flush(ctx context.Context, force bool) {
	now := time.Now()
	var writes []statusWrite
	s.mu.Lock()
	for key, e := range s.pending {
		if !e.dirty || (!force && now.Sub(e.lastWrite) < s.interval) {
			continue
		}
		st := map[string]any{}
		if e.lastRequest != nil {
			st["lastRequest"] = e.lastRequest
		}
		if e.lastAuthFailure != nil {
			st["lastAuthFailure"] = e.lastAuthFailure
		}
		body, err := json.Marshal(map[string]any{"status": st})
		if err != nil {
			continue
		}
		e.dirty = false
		e.lastWrite = now
		writes = append(writes, statusWrite{key: key, body: body})
	}
	s.mu.Unlock()
	for _, w := range writes {
		// A JSON merge patch touching only these two fields: the ScimSettings reconciler
		// owns the rest of the status.
		obj := &scimv1.ScimSettings{ObjectMeta: metav1.ObjectMeta{Namespace: w.key.Namespace, Name: w.key.Name}}
		err := s.client.Status().Patch(ctx, obj, client.RawPatch(types.MergePatchType, w.body), client.FieldOwner(audit.SCIMFieldManager))
		switch {
		case err == nil:
			statusWrites.WithLabelValues("ok").Inc()
		case apierrors.IsNotFound(err):
			statusWrites.WithLabelValues("gone").Inc()
			s.mu.Lock()
			delete(s.pending, w.key)
			s.mu.Unlock()
		default:
			statusWrites.WithLabelValues("error").Inc()
			s.log.Error(err, "writing ScimSettings status", "scimsettings", w.key.String())
			s.mu.Lock()
			if e, ok := s.pending[w.key]; ok {
				e.dirty = true
			}
			s.mu.Unlock()
		}
	}
}
