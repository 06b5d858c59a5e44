// Package controllers holds the reconcilers. StackUserReconciler enforces each StackUser on
// its tenant's downstream site (link or create, activation, role within the promotion
// switches, profile, finalizer); ResyncReconciler reads each tenant's site back
// periodically to find drift and site-only users; ScimSettingsReconciler keeps the tenants'
// own status. Setup wires the first two into a manager.
package controllers
