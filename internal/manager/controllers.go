package manager

import (
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/stackscim/stack-scim-operator/controllers"
)

// setupControllers registers the reconcilers; they run on the elected leader only.
func setupControllers(mgr ctrl.Manager, opts Options) error {
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
		Cache:       mgr.GetCache(),
		ExternalURL: opts.ExternalURL,
		Recorder:    mgr.GetEventRecorder("scimsettings-controller"),
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the ScimSettings reconciler: %w", err)
	}
	return nil
}
