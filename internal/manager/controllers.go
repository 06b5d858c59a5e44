package manager

import (
	ctrl "sigs.k8s.io/controller-runtime"
)

// setupControllers registers the reconcilers; they run on the elected leader only.
func setupControllers(mgr ctrl.Manager, opts Options) error {
	_ = mgr
	_ = opts
	return nil
}
