package manager

import (
	"errors"
	"net/http"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/stackscim/stack-scim-operator/internal/listener"
	"github.com/stackscim/stack-scim-operator/internal/scim/server"
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
		return nil
	}
	s, _, err := server.AddToManager(mgr, server.Options{
		ExternalURL:  opts.ExternalURL,
		MaxBodyBytes: opts.SCIMMaxBodyBytes,
		MaxCount:     opts.SCIMMaxCount,
		RateLimit:    opts.SCIMRateLimit,
		RateBurst:    opts.SCIMRateBurst,
	}, listener.Options{
		Addr:     opts.SCIMAddr,
		CertFile: opts.SCIMCertFile,
		KeyFile:  opts.SCIMKeyFile,
	}, opts.SCIMListening)
	if err != nil {
		return err
	}
	// /readyz says no while the SCIM server cannot answer (its caches are not synced, e.g.
	// a ScimSettings list keeps failing): a replica that refuses every tenant is not ready.
	return mgr.AddReadyzCheck("scim-server", func(*http.Request) error {
		if !s.Ready() {
			return errors.New("the SCIM server's caches are not synced yet")
		}
		return nil
	})
}
