package controllers

import (
	"time"

	"golang.org/x/time/rate"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/stackscim/stack-scim-operator/internal/audit"
	"github.com/stackscim/stack-scim-operator/internal/brake"
	"github.com/stackscim/stack-scim-operator/internal/progress"
	"github.com/stackscim/stack-scim-operator/internal/site"
	scimtenant "github.com/stackscim/stack-scim-operator/internal/tenant"
)

// Options tune the reconcilers; the zero value is production-ready.
type Options struct {
	// MinBackoff and MaxBackoff bound the requeue delay after site failures
	// (defaults 1s and 5m).
	MinBackoff, MaxBackoff time.Duration
	// SignInWait is how long a user whose site account cannot be created waits before it
	// is looked up again (default 2m); the resync also finds it.
	SignInWait time.Duration
	// ResyncJitter spreads each tenant's resync period by up to ±this fraction (default 0.1).
	ResyncJitter float64
	// Site holds defaults for every tenant's site client: retries, back-off, HTTP client.
	Site site.Config
	// MaxConcurrentReconciles bounds parallel StackUser reconciles (default 32: a
	// reconcile mostly waits on the site, and the tenant rate limit protects the site).
	MaxConcurrentReconciles int
	// EventQPS and EventBurst bound the audit Events sent per second (defaults 20 and
	// 200): Events are best-effort API writes; status.history and the log keep every entry.
	EventQPS   float64
	EventBurst int
	// Tenants reads tenants and their Secrets; a new internal/tenant.Reader on the
	// manager's cache when nil.
	Tenants client.Reader
	// Sites hands out one rate-limited site client per tenant; shared with the SCIM
	// server so both stay within the tenant's limit. A new one (with Site) when nil.
	Sites *site.Clients
	// Trails holds the history of the cached StackUsers, which the manager's cache
	// transform drops from them (nil: the cached copies carry their history).
	Trails *audit.Trails
	// Progress counts finished user changes for the ScimSettings reconciler's backlog
	// estimate (nil: not counted).
	Progress *progress.Meter
}

func (o Options) eventQPS() float64 {
	if o.EventQPS <= 0 {
		return 20
	}
	return o.EventQPS
}

func (o Options) eventBurst() int {
	if o.EventBurst <= 0 {
		return 200
	}
	return o.EventBurst
}

// Setup registers the StackUser reconciler and the resync with mgr. Both run on the
// elected leader only and share one site client per tenant.
func Setup(mgr ctrl.Manager, opts Options) error {
	sites := opts.Sites
	if sites == nil {
		sites = &site.Clients{Defaults: opts.Site}
	}
	tenants := opts.Tenants
	if tenants == nil {
		tenants = scimtenant.NewReader(mgr.GetCache(), mgr.GetAPIReader())
	}
	watchBacklog(mgr.GetCache())
	resync := make(chan event.GenericEvent, 1024)
	released := make(chan event.GenericEvent, 1024)
	held := &brake.Brake{Client: mgr.GetClient(), Wake: wakeUsers(released)}
	users := &StackUserReconciler{
		Client: mgr.GetClient(),
		Audit: &audit.Recorder{
			Client:     mgr.GetClient(),
			Live:       mgr.GetAPIReader(),
			Trails:     opts.Trails,
			Events:     mgr.GetEventRecorder(controllerName),
			EventLimit: rate.NewLimiter(rate.Limit(opts.eventQPS()), opts.eventBurst()),
			Log:        mgr.GetLogger().WithName("audit"),
		},
		APIReader:               mgr.GetAPIReader(),
		Sites:                   sites,
		Tenants:                 tenants,
		Resync:                  resync,
		Brake:                   held,
		Progress:                opts.Progress,
		Released:                released,
		MinBackoff:              opts.MinBackoff,
		MaxBackoff:              opts.MaxBackoff,
		SignInWait:              opts.SignInWait,
		MaxConcurrentReconciles: opts.MaxConcurrentReconciles,
	}
	if err := users.SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&StackGroupReconciler{Client: mgr.GetClient()}).SetupWithManager(mgr); err != nil {
		return err
	}
	return (&ResyncReconciler{
		Client:  mgr.GetClient(),
		Cache:   mgr.GetCache(),
		Sites:   sites,
		Tenants: tenants,
		Enqueue: resync,
		Jitter:  opts.ResyncJitter,
	}).SetupWithManager(mgr)
}
