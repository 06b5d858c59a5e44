package controllers

import (
	"context"
	"encoding/json"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/internal/groups"
)

// StackGroupReconciler keeps a StackGroup's member count in its status and, when the
// group is deleted, takes its label off every member (which re-evaluates their roles).
// Membership itself is written by the SCIM server, one label per member.
type StackGroupReconciler struct {
	client.Client
	// CountDelay batches member count updates: a push of thousands of members costs a
	// status write every CountDelay, not one per member (default 2s).
	CountDelay time.Duration
}

// +kubebuilder:rbac:groups=scim.stackscim.io,resources=stackgroups,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=scim.stackscim.io,resources=stackgroups/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=scim.stackscim.io,resources=stackgroups/finalizers,verbs=update

// Reconcile counts a group's members, or releases them when it is being deleted.
func (r *StackGroupReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	g := &scimv1.StackGroup{}
	if err := r.Get(ctx, req.NamespacedName, g); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	members, err := groups.Members(ctx, r.Client, g)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !g.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.release(ctx, g, members)
	}
	if g.Status.Members == int32(len(members)) && g.Status.ObservedGeneration == g.Generation {
		return ctrl.Result{}, nil
	}
	body, _ := json.Marshal(map[string]any{"status": map[string]any{"members": len(members), "observedGeneration": g.Generation}})
	err = r.Status().Patch(ctx, g, client.RawPatch(types.MergePatchType, body))
	return ctrl.Result{}, client.IgnoreNotFound(err)
}

// release removes the group's label from its members, then the finalizer. The label patch
// touches nothing else, so it needs no lock; a member already gone is skipped.
func (r *StackGroupReconciler) release(ctx context.Context, g *scimv1.StackGroup, members []*scimv1.StackUser) error {
	if !controllerutil.ContainsFinalizer(g, groups.Finalizer) {
		return nil
	}
	body, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]any{g.MemberLabel(): nil}}})
	for _, u := range members {
		target := &scimv1.StackUser{}
		target.Namespace, target.Name = u.Namespace, u.Name
		if err := r.Patch(ctx, target, client.RawPatch(types.MergePatchType, body)); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	base := g.DeepCopy()
	controllerutil.RemoveFinalizer(g, groups.Finalizer)
	return client.IgnoreNotFound(r.Patch(ctx, g, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})))
}

// SetupWithManager registers the reconciler: group changes, and member label changes
// (delayed by CountDelay, so a burst of them is one count).
func (r *StackGroupReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.CountDelay <= 0 {
		r.CountDelay = 2 * time.Second
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("stackgroup").
		For(&scimv1.StackGroup{}).
		Watches(&scimv1.StackUser{}, r.memberEvents(), builder.WithPredicates(predicate.Funcs{
			UpdateFunc: func(e event.UpdateEvent) bool {
				return !groupLabelsEqual(e.ObjectOld.GetLabels(), e.ObjectNew.GetLabels())
			},
			CreateFunc:  func(e event.CreateEvent) bool { return hasGroupLabels(e.Object.GetLabels()) },
			DeleteFunc:  func(e event.DeleteEvent) bool { return hasGroupLabels(e.Object.GetLabels()) },
			GenericFunc: func(event.GenericEvent) bool { return false },
		})).
		Complete(r)
}

func hasGroupLabels(l map[string]string) bool { return !groupLabelsEqual(l, nil) }

// memberEvents enqueues, after CountDelay, every group named by a label of the old or new
// user. The delaying queue keeps one entry per group, so a push of many members is
// counted once per delay.
func (r *StackGroupReconciler) memberEvents() handler.TypedEventHandler[client.Object, reconcile.Request] {
	enqueue := func(q workqueue.TypedRateLimitingInterface[reconcile.Request], objs ...client.Object) {
		for _, o := range objs {
			if o == nil {
				continue
			}
			for k := range o.GetLabels() {
				if isGroupLabel(k) {
					q.AddAfter(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: k[len(scimv1.LabelGroupPrefix):]}}, r.CountDelay)
				}
			}
		}
	}
	return handler.Funcs{
		CreateFunc: func(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(q, e.Object)
		},
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(q, e.ObjectOld, e.ObjectNew)
		},
		DeleteFunc: func(_ context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(q, e.Object)
		},
	}
}
