package manager

import (
	"errors"
	"net/http"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"

	"github.com/stackscim/stack-scim-operator/internal/listener"
	"github.com/stackscim/stack-scim-operator/internal/scim/server"
	"github.com/stackscim/stack-scim-operator/internal/site"
)

// setupSCIMServer registers the SCIM 2.0 server as a Runnable on every replica: the
// server itself (waits for the caches, writes tenant status) and its HTTP listener.
// An empty SCIMAddr disables it.
//
// Bearer tokens are read from Secrets through the manager's cache, so rotating a token
// takes effect without a restart. That makes the cache watch Secrets in every watched
// namespace (all, unless WatchNamespace is set); the reconcilers read the site token
// Secrets the same way, so the informer is shared.
func setupSCIMServer(mgr ctrl.Manager, opts Options) error {
	if opts.SCIMAddr == "" {
		return mgr.AddReadyzCheck("readyz", healthz.Ping)
	}
	// Site accounts no StackUser describes are listed for IdP imports, through the
	// reconcilers' per-tenant site clients (on the leader they share the tenant's rate
	// limit). It only lists the site, once per snapshot TTL and only for tenants an IdP
	// is reading.
	var sites *site.Clients
	if !opts.SCIMHideSiteAccounts {
		sites = opts.Reconcilers.Sites
		if sites == nil {
			sites = &site.Clients{Defaults: opts.Reconcilers.Site}
		}
	}
	srv, l, err := server.AddToManager(mgr, server.Options{
		ExternalURL:  opts.ExternalURL,
		MaxBodyBytes: opts.SCIMMaxBodyBytes,
		MaxCount:     opts.SCIMMaxCount,
		RateLimit:    opts.SCIMRateLimit,
		RateBurst:    opts.SCIMRateBurst,
		Sites:        sites,
		SiteAccounts: opts.SCIMSiteAccounts,
	}, listener.Options{
		Addr:     opts.SCIMAddr,
		CertFile: opts.SCIMCertFile,
		KeyFile:  opts.SCIMKeyFile,
		// The drain outlasts the write budget (WriteTimeout): a request that was allowed
		// to start is allowed to finish.
		DrainTimeout: opts.DrainTimeout,
	}, opts.SCIMListening)
	if err != nil {
		return err
	}
	return mgr.AddReadyzCheck("scim", scimReadiness(srv, l))
}

// scimReadiness is ready when the replica can answer SCIM correctly: its caches are synced
// and the tenants' routes and user view are loaded (the server's Ready), the listener is
// bound, and shutdown has not begun. A replica that would answer 503 or 404 for a tenant
// it has not loaded yet, or that is draining, gets no traffic.
func scimReadiness(srv *server.Server, l *listener.Listener) healthz.Checker {
	return func(*http.Request) error {
		switch {
		case l.Draining():
			return errors.New("shutting down: draining in-flight SCIM requests")
		case !srv.Ready():
			return errors.New("caches not synced yet: tenant routes and users not loaded")
		case !l.Serving():
			return errors.New("SCIM listener not bound yet")
		}
		return nil
	}
}
