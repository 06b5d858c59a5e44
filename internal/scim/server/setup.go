package server

import (
	"context"
	"net"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/stackscim/stack-scim-operator/internal/listener"
	"github.com/stackscim/stack-scim-operator/internal/tenant"
)

// RBAC of the SCIM server (it runs in the manager's pod, with the manager's role).
// +kubebuilder:rbac:groups=scim.stackscim.io,resources=stackusers,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=scim.stackscim.io,resources=stackusers/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=scim.stackscim.io,resources=scimsettings,verbs=get;list;watch
// +kubebuilder:rbac:groups=scim.stackscim.io,resources=stackgroups,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=scim.stackscim.io,resources=scimsettings/status,verbs=get;patch
// +kubebuilder:rbac:groups=core,resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// AddToManager builds a Server on the manager's client, cache and event recorder (the
// fields of opts it fills are overwritten) and adds it and its HTTP listener to the
// manager. listening, when set, is called with the bound address once it is known.
func AddToManager(mgr ctrl.Manager, opts Options, lopts listener.Options, listening func(net.Addr)) (*Server, *listener.Listener, error) {
	opts.Client = mgr.GetClient()
	opts.APIReader = mgr.GetAPIReader()
	opts.Cache = mgr.GetCache()
	if opts.Tenants == nil {
		opts.Tenants = tenant.NewReader(mgr.GetCache(), mgr.GetAPIReader())
	}
	opts.Events = mgr.GetEventRecorder("scim-server")
	opts.Log = mgr.GetLogger().WithName("scim")
	s := New(opts)
	l := listener.New(lopts, s, opts.Log.WithName("listener"))
	if err := mgr.Add(s); err != nil {
		return nil, nil, err
	}
	if err := mgr.Add(l); err != nil {
		return nil, nil, err
	}
	if listening != nil {
		if err := mgr.Add(everyReplica(func(ctx context.Context) error {
			addr, err := l.Addr(ctx)
			if err == nil {
				listening(addr)
			}
			return nil
		})); err != nil {
			return nil, nil, err
		}
	}
	return s, l, nil
}

// everyReplica is a Runnable that runs without leader election.
type everyReplica func(context.Context) error

func (f everyReplica) Start(ctx context.Context) error { return f(ctx) }
func (f everyReplica) NeedLeaderElection() bool        { return false }
