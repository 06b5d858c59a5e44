package manager

import (
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/stackscim/stack-scim-operator/controllers"
	"github.com/stackscim/stack-scim-operator/internal/progress"
	scimtenant "github.com/stackscim/stack-scim-operator/internal/tenant"
)

// setupControllers registers the reconcilers; they run on the elected leader only.
func setupControllers(mgr ctrl.Manager, opts Options) error {
	// One reader, so each tenant Secret's data is held once.
	tenants := scimtenant.NewReader(mgr.GetCache(), mgr.GetAPIReader())
	opts.Reconcilers.Tenants = tenants
	// The StackUser reconciler counts finished changes; the ScimSettings reconciler turns
	// them into the backlog's rate and estimate.
	meter := progress.NewMeter()
	opts.Reconcilers.Progress = meter
	if opts.enabled("stackuser") {
		if err := controllers.Setup(mgr, opts.Reconcilers); err != nil {
			return fmt.Errorf("setting up the StackUser reconciler and resync: %w", err)
		}
	}
	if !opts.enabled("scimsettings") {
		return nil
	}
	if err := (&controllers.ScimSettingsReconciler{
		Client:      mgr.GetClient(),
		Tenants:     tenants,
		Cache:       mgr.GetCache(),
		ExternalURL: opts.ExternalURL,
		Recorder:    mgr.GetEventRecorder("scimsettings-controller"),
		Progress:    meter,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the ScimSettings reconciler: %w", err)
	}
	return nil
}
