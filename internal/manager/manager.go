// Package manager assembles the controller-runtime manager: caches and field indexes, the
// reconcilers, and the SCIM server. cmd/manager, the e2e tests and the benchmarks share it,
// so what is tested is what ships.
package manager

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	scimv1 "github.com/stackscim/stack-scim-operator/api/v1alpha1"
	"github.com/stackscim/stack-scim-operator/controllers"
	"github.com/stackscim/stack-scim-operator/internal/audit"
	"github.com/stackscim/stack-scim-operator/internal/cachetrim"
	"github.com/stackscim/stack-scim-operator/internal/index"
	"github.com/stackscim/stack-scim-operator/internal/scheme"
	"github.com/stackscim/stack-scim-operator/internal/site"
	"github.com/stackscim/stack-scim-operator/internal/sitedir"
)

// DefaultLeaderElectionID is the Lease of an unsharded install.
const DefaultLeaderElectionID = "stack-scim-operator.scim.stackscim.io"

// Options configure the manager.
type Options struct {
	MetricsAddr             string
	ProbeAddr               string
	LeaderElect             bool
	LeaderElectionNamespace string
	// LeaderElectionID names the Lease (default DefaultLeaderElectionID). Each shard of a
	// sharded install (several managers, each watching its own namespaces) has its own,
	// so every shard has a leader.
	LeaderElectionID string
	SCIMAddr         string
	SCIMCertFile     string
	SCIMKeyFile      string
	ExternalURL      string
	// WatchNamespace limits the manager to these namespaces (comma-separated); all
	// namespaces when empty. The chart grants a Role in each.
	WatchNamespace string
	SyncPeriod     time.Duration
	Metrics        metricsserver.Options
	// DrainTimeout is how long a stopping replica waits for in-flight SCIM requests
	// (0: the listener's write budget plus 5 s). The manager's graceful shutdown is
	// this plus shutdownMargin, so reconcilers and the leader's Lease release fit too.
	DrainTimeout time.Duration
	// PprofAddr serves net/http/pprof when set; off by default (profiles reveal memory).
	PprofAddr string
	// Controllers names the reconcilers to run: "stackuser" (StackUsers and the site
	// resync) and "scimsettings"; "*" or empty runs all. Benchmarks of the SCIM server
	// alone run with only "scimsettings".
	Controllers []string

	// SCIMRateLimit is each SCIM tenant's sustained request rate per second (0: 200;
	// negative: unlimited) and SCIMRateBurst its burst (0: 400).
	SCIMRateLimit float64
	SCIMRateBurst int
	// SCIMMaxBodyBytes caps SCIM request bodies (0: 1 MiB) and SCIMMaxCount the page
	// size of SCIM list responses (0: 1000).
	SCIMMaxBodyBytes int64
	SCIMMaxCount     int
	// SCIMListening, when set, is called with the SCIM listener's bound address (tests
	// listen on 127.0.0.1:0 and need the port).
	SCIMListening func(net.Addr)
	// SCIMSiteAccounts tunes the snapshot of site accounts that SCIM lists show as
	// unmanaged users for IdP imports (TTL, waits, bounds); the zero value is
	// production-ready.
	SCIMSiteAccounts sitedir.Options
	// SCIMHideSiteAccounts turns that listing off: SCIM lists show StackUsers only.
	SCIMHideSiteAccounts bool

	// Reconcilers tunes the StackUser reconciler and the site resync (back-off, site
	// client retries); the zero value is production-ready.
	Reconcilers controllers.Options
}

// watchNamespaces splits WatchNamespace.
func (o Options) watchNamespaces() []string {
	var out []string
	for _, ns := range strings.Split(o.WatchNamespace, ",") {
		if ns = strings.TrimSpace(ns); ns != "" && !slices.Contains(out, ns) {
			out = append(out, ns)
		}
	}
	return out
}

// enabled reports whether the named reconciler should run.
func (o Options) enabled(name string) bool {
	if len(o.Controllers) == 0 {
		return true
	}
	for _, c := range o.Controllers {
		if c == "*" || c == name {
			return true
		}
	}
	return false
}

// shutdownMargin is the time the manager's shutdown allows beyond the SCIM drain.
const shutdownMargin = 15 * time.Second

// DefaultDrainTimeout is the SCIM drain when Options.DrainTimeout is 0: the listener's
// write budget (55 s) plus 5 s.
const DefaultDrainTimeout = 60 * time.Second

// New builds a manager with every component registered, with /healthz and a /readyz that
// reflects what the SCIM server needs.
func New(cfg *rest.Config, opts Options) (ctrl.Manager, error) {
	// Cached objects lose the metadata nobody reads, and StackUsers their history: at
	// 100k users that is three quarters of the memory.
	trails := audit.NewTrails()
	opts.Reconcilers.Trails = trails
	cacheOpts := cache.Options{DefaultTransform: cachetrim.Transform(trails)}
	if opts.SyncPeriod > 0 {
		cacheOpts.SyncPeriod = &opts.SyncPeriod
	}
	if namespaces := opts.watchNamespaces(); len(namespaces) > 0 {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range namespaces {
			cacheOpts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = DefaultDrainTimeout
	}
	gracefulShutdown := opts.DrainTimeout + shutdownMargin
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme.New(),
		Metrics:                 opts.Metrics,
		HealthProbeBindAddress:  opts.ProbeAddr,
		PprofBindAddress:        opts.PprofAddr,
		LeaderElection:          opts.LeaderElect,
		LeaderElectionID:        cmp.Or(opts.LeaderElectionID, DefaultLeaderElectionID),
		LeaderElectionNamespace: opts.LeaderElectionNamespace,
		// The leader steps down at once on SIGTERM so a rolling update hands over fast.
		LeaderElectionReleaseOnCancel: true,
		Cache:                         cacheOpts,
		// Secrets are never cached whole: the cache holds their metadata only, and
		// internal/tenant reads the data of the Secrets tenants name (see tenant.Reader).
		// A stray Get of a Secret reads the API server rather than starting an informer
		// over every Secret's data.
		Client: client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}}}},
		// The SCIM listener stops first and drains; caches, reconcilers and the probe
		// server stop after it (controller-runtime's order), so draining requests can
		// still read the cache and the probe answers "not ready" meanwhile.
		GracefulShutdownTimeout: &gracefulShutdown,
	})
	if err != nil {
		return nil, fmt.Errorf("creating manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, err
	}
	if err := index.Setup(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return nil, fmt.Errorf("registering field indexes: %w", err)
	}
	if err := forgetDeleted(mgr, trails); err != nil {
		return nil, err
	}
	// One site client per tenant for the reconcilers and the SCIM server's site account
	// listing, so together they stay within the tenant's site rate limit.
	opts.Reconcilers.Sites = &site.Clients{Defaults: opts.Reconcilers.Site}
	if err := setupControllers(mgr, opts); err != nil {
		return nil, err
	}
	if err := setupSCIMServer(mgr, opts); err != nil {
		return nil, err
	}
	return mgr, nil
}

// forgetDeleted drops a deleted StackUser's trail once the cache has let go of it.
func forgetDeleted(mgr ctrl.Manager, trails *audit.Trails) error {
	inf, err := mgr.GetCache().GetInformer(context.Background(), &scimv1.StackUser{})
	if err != nil {
		return fmt.Errorf("watching StackUsers: %w", err)
	}
	_, err = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{DeleteFunc: func(obj any) {
		if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if u, ok := obj.(*scimv1.StackUser); ok {
			trails.Forget(client.ObjectKeyFromObject(u))
		}
	}})
	return err
}
