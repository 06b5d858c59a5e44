// Package e2e holds end-to-end tests: the real manager and site-simulator binaries run as
// processes against a real control plane, and the tests play identity-provider flows over
// HTTP. The package has no code outside its tests.
package e2e
